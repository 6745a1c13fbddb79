// Dead-letter replay (sluice.dead_replay, drizzle/functions/dead-jobs/replay.sql)
// against bounded queues and against other sessions: a concurrent purge, a
// concurrent enqueue taking the replayed job's unique key, a second replay.
// Sessions interleave by explicit BEGIN/COMMIT; a step that must wait is
// seen waiting on a lock in pg_stat_activity before the other side commits.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueFullError, Sluice } from '../packages/sluice/src/index.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';
import { Sessions, lockWait, lockWaitOrSettled } from './helpers/sessions.js';

let db: TestDb;
let sluice: Sluice;
const sessions = new Sessions(() => db.url);

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
});
afterAll(async () => {
  await sessions.end();
  await sluice?.close();
  await db?.drop();
});

const session = () => sessions.open();
const waitingOnLock = (pid: number) => lockWait(db.pool, pid);
/** Until `pending` has settled or the backend `pid` waits on a lock, whichever comes first. */
const settledOrWaitingOnLock = (pending: Promise<unknown>, pid: number) => lockWaitOrSettled(db.pool, pid, pending);

async function enqueue(queue: string, key: string | null = null, maxAttempts: number | null = null): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT sluice.enqueue('replay.job', '{}'::jsonb, queue => $1, unique_key => $2, max_attempts => $3) AS id`,
    [queue, key, maxAttempts],
  );
  return Number(rows[0]!.id);
}

/** A job of `queue` that failed permanently on its one attempt. */
async function deadJob(queue: string, key: string | null = null): Promise<number> {
  const id = await enqueue(queue, key, 1);
  const { rows } = await db.pool.query<{ id: string; attempt: number; lease: string }>(
    `SELECT id, attempt, lease FROM sluice.claim(ARRAY[$1], ARRAY[1], 'replay-races', 60000)`,
    [queue],
  );
  expect(rows.map((r) => Number(r.id))).toEqual([id]);
  await db.pool.query(
    `SELECT * FROM sluice.job_fail_many(ARRAY[$1]::bigint[], ARRAY[$2]::int[], ARRAY['{"message":"x"}'::jsonb], ARRAY[true],
       NULL, NULL, 'replay-races', ARRAY[$3]::bigint[])`,
    [id, rows[0]!.attempt, rows[0]!.lease],
  );
  expect(await isDead(id)).toBe(true);
  return id;
}

async function isDead(id: number): Promise<boolean> {
  return (await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1`, [id])) === 1;
}

async function configure(queue: string, settings: Record<string, unknown>): Promise<void> {
  await db.pool.query(`SELECT sluice.queue_configure($1, $2)`, [queue, JSON.stringify(settings)]);
}

/** What maxDepth counts: waiting, scheduled and available jobs. */
async function depth(queue: string): Promise<number> {
  return count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = $1 AND state IN ('waiting', 'scheduled', 'available')`, [queue]);
}

/** The SQLSTATE a replay fails with, or the ids it replayed. */
async function replay(ids: number[], c: pg.Client | pg.Pool = db.pool): Promise<number[] | string> {
  return c.query<{ id: string }>(`SELECT id FROM sluice.dead_replay($1::bigint[]) AS id`, [ids]).then(
    (r) => r.rows.map((row) => Number(row.id)).sort((a, b) => a - b),
    (e: { code?: string }) => String(e.code),
  );
}

describe('replay into a bounded queue', () => {
  it('a full block queue raises SLQ02 (QueueFullError from replayDead), replaying nothing', async () => {
    const dead = await deadJob('replay.block');
    await configure('replay.block', { max_depth: 1, overflow: 'block' });
    await enqueue('replay.block');
    expect(await replay([dead])).toBe('SLQ02');
    const err = await sluice.replayDead([dead]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).queue).toBe('replay.block');
    expect({ depth: await depth('replay.block'), dead: await isDead(dead) }).toEqual({ depth: 1, dead: true });
  });

  it('a block queue raises SLQ01 when the replay alone is larger than max_depth', async () => {
    const dead = [await deadJob('replay.block-big'), await deadJob('replay.block-big')];
    await configure('replay.block-big', { max_depth: 1, overflow: 'block' });
    expect(await replay(dead)).toBe('SLQ01');
    expect({ depth: await depth('replay.block-big'), dead: await isDead(dead[0]!) }).toEqual({ depth: 0, dead: true });
  });

  it('a full reject queue raises SLQ01, replaying nothing, also of the ids bound for other queues', async () => {
    const elsewhere = await deadJob('replay.open');
    const dead = await deadJob('replay.reject');
    await configure('replay.reject', { max_depth: 1, overflow: 'reject' });
    await enqueue('replay.reject');
    expect(await replay([elsewhere, dead])).toBe('SLQ01');
    expect({ depth: await depth('replay.reject'), dead: await isDead(dead), elsewhere: await isDead(elsewhere) }).toEqual({
      depth: 1,
      dead: true,
      elsewhere: true,
    });
  });

  it('a queue with room takes the replay', async () => {
    const dead = await deadJob('replay.room');
    await configure('replay.room', { max_depth: 2, overflow: 'reject' });
    await enqueue('replay.room');
    expect(await replay([dead])).toEqual([dead]);
    expect(await depth('replay.room')).toBe(2);
  });

  it('drop_oldest drops the oldest waiting job to make room, as an enqueue would, and keeps the replayed one', async () => {
    const dead = await deadJob('replay.drop-old');
    await configure('replay.drop-old', { max_depth: 2, overflow: 'drop_oldest' });
    const oldest = await enqueue('replay.drop-old');
    const newer = await enqueue('replay.drop-old');
    expect(await replay([dead])).toEqual([dead]);
    const { rows: live } = await db.pool.query(`SELECT id::int FROM sluice.jobs WHERE queue = 'replay.drop-old' ORDER BY id`);
    const { rows: dropped } = await db.pool.query(`SELECT id::int, state FROM sluice.job_history WHERE queue = 'replay.drop-old'`);
    expect({ live, dropped }).toEqual({ live: [{ id: dead }, { id: newer }], dropped: [{ id: oldest, state: 'dropped' }] });
  });

  it('drop_newest drops the replayed job that does not fit, as an enqueue drops its own newest', async () => {
    const dead = await deadJob('replay.drop-new');
    await configure('replay.drop-new', { max_depth: 1, overflow: 'drop_newest' });
    const waiting = await enqueue('replay.drop-new');
    expect(await replay([dead])).toEqual([dead]);
    const { rows: live } = await db.pool.query(`SELECT id::int FROM sluice.jobs WHERE queue = 'replay.drop-new'`);
    const { rows: dropped } = await db.pool.query(`SELECT id::int, state FROM sluice.job_history WHERE queue = 'replay.drop-new'`);
    expect({ live, dropped, dead: await isDead(dead) }).toEqual({
      live: [{ id: waiting }],
      dropped: [{ id: dead, state: 'dropped' }],
      dead: false,
    });
  });
});

describe('replay racing another session', () => {
  it('an enqueue taking the unique key in an open transaction: the replay waits, then runs the job without the key', async () => {
    const dead = await deadJob('replay.key', 'k');
    const producer = await session();
    const replayer = await session();
    await producer.c.query('BEGIN');
    const live = Number(
      (await producer.c.query<{ id: string }>(`SELECT sluice.enqueue('replay.job', '{}'::jsonb, queue => 'replay.key', unique_key => 'k') AS id`))
        .rows[0]!.id,
    );
    const replayed = replay([dead], replayer.c);
    await waitingOnLock(replayer.pid);
    await producer.c.query('COMMIT');
    expect(await replayed).toEqual([dead]);
    const { rows } = await db.pool.query(`SELECT id::int, state, unique_key FROM sluice.jobs WHERE queue = 'replay.key' ORDER BY id`);
    expect(rows).toEqual([
      { id: dead, state: 'available', unique_key: null },
      { id: live, state: 'available', unique_key: 'k' },
    ]);
  });

  it('an enqueue of the unique key that rolls back leaves the key to the replayed job', async () => {
    const dead = await deadJob('replay.key-back', 'k');
    const producer = await session();
    const replayer = await session();
    await producer.c.query('BEGIN');
    await producer.c.query(`SELECT sluice.enqueue('replay.job', '{}'::jsonb, queue => 'replay.key-back', unique_key => 'k')`);
    const replayed = replay([dead], replayer.c);
    await waitingOnLock(replayer.pid);
    await producer.c.query('ROLLBACK');
    expect(await replayed).toEqual([dead]);
    const { rows } = await db.pool.query(`SELECT id::int, unique_key FROM sluice.jobs WHERE queue = 'replay.key-back'`);
    expect(rows).toEqual([{ id: dead, unique_key: 'k' }]);
  });

  it('a purge of one of the ids committing first: P0002 naming it, and the other id stays dead', async () => {
    const x = await deadJob('replay.purge');
    const y = await deadJob('replay.purge');
    const purger = await session();
    const replayer = await session();
    await purger.c.query('BEGIN');
    await purger.c.query(`SELECT sluice.dead_purge(ids => ARRAY[$1]::bigint[])`, [x]);
    const replayed = replayer.c.query(`SELECT id FROM sluice.dead_replay(ARRAY[$1, $2]::bigint[]) AS id`, [x, y]).catch((e: unknown) => e);
    await waitingOnLock(replayer.pid);
    await purger.c.query('COMMIT');
    expect(await replayed).toMatchObject({ code: 'P0002', message: `sluice.dead_replay: no dead job with id ${x}` });
    expect({ y: await isDead(y), live: await depth('replay.purge') }).toEqual({ y: true, live: 0 });
  });

  it('a drop_oldest replay while a worker claims the oldest job: the job it made running stays, and none is dropped in its place', async () => {
    const dead = await deadJob('replay.drop-claimed');
    const oldest = await enqueue('replay.drop-claimed');
    await configure('replay.drop-claimed', { max_depth: 1, overflow: 'drop_oldest' });
    const worker = await session();
    const replayer = await session();
    await worker.c.query('BEGIN');
    const { rows: claimed } = await worker.c.query<{ id: string }>(
      `SELECT id FROM sluice.claim(ARRAY['replay.drop-claimed'], ARRAY[1], 'replay-races-worker', 60000)`,
    );
    expect(claimed.map((r) => Number(r.id))).toEqual([oldest]);
    const replayed = replay([dead], replayer.c);
    await settledOrWaitingOnLock(replayed, replayer.pid);
    await worker.c.query('COMMIT');
    expect(await replayed).toEqual([dead]);
    const { rows: live } = await db.pool.query(`SELECT id::int, state FROM sluice.jobs WHERE queue = 'replay.drop-claimed' ORDER BY id`);
    const { rows: dropped } = await db.pool.query(`SELECT id::int FROM sluice.job_history WHERE queue = 'replay.drop-claimed'`);
    expect({ live, dropped }).toEqual({
      live: [
        { id: dead, state: 'available' },
        { id: oldest, state: 'running' },
      ],
      dropped: [],
    });
  });

  it('two replays of the same ids: the second, waiting for the first, raises P0002 instead of replaying nothing silently', async () => {
    const x = await deadJob('replay.twice');
    const first = await session();
    const second = await session();
    await first.c.query('BEGIN');
    expect(await replay([x], first.c)).toEqual([x]);
    const again = replay([x], second.c);
    await waitingOnLock(second.pid);
    await first.c.query('COMMIT');
    expect(await again).toBe('P0002');
    expect(await depth('replay.twice')).toBe(1);
  });
});
