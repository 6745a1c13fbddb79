// Statements that write several jobs wait for each other's row locks, so each
// must take its rows in one order, id ascending, as sluice.cancel_many does:
// otherwise a cancellation of some of a worker's jobs and that worker's
// completion (failure, release, heartbeat) of them, or the rescue of a lost
// worker's jobs, each hold a row the other waits for, and one of them fails
// with a deadlock (40P01) instead of waiting.
//
// The jobs are A < B < C by id, held by one worker in its claim order B, C, A
// (B and C first, by priority, in a claim of their own): the order a worker
// sends them in, and the order of their rows in the table. A third session
// holds C, so that each writer's first locks are taken before the
// cancellation's, deterministically; each step that must wait is seen waiting
// on a lock in pg_stat_activity before the next one starts.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobClaim, jobCompleteMany, jobFailMany, jobReleaseMany, type ClaimedJobRow } from '../packages/sluice/src/sql/job-leases.js';
import { workerHeartbeat } from '../packages/sluice/src/sql/workers.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { Sessions, lockWait, lockWaitOrSettled, type Session } from './helpers/sessions.js';

let db: TestDb;
const sessions = new Sessions(() => db.url);

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await sessions.end();
  await db?.drop();
});

interface Held {
  a: number;
  b: number;
  c: number;
  /** As the worker holds them: B, C, A. */
  claimed: ClaimedJobRow[];
}

async function enqueue(queue: string, priority: number): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('lock.job', '{}'::jsonb, queue => $1, priority => $2) AS id`, [
    queue,
    priority,
  ]);
  return Number(rows[0]!.id);
}

async function heldByWorker(queue: string, worker: string): Promise<Held> {
  const a = await enqueue(queue, 0);
  const b = await enqueue(queue, 10);
  const c = await enqueue(queue, 10);
  const claim = (limit: number) => jobClaim(db.pool, { queues: [queue], limits: [limit], workerId: worker, leaseMs: 600_000 });
  const claimed = [...(await claim(2)), ...(await claim(1))];
  expect(claimed.map((j) => j.id)).toEqual([b, c, a]);
  return { a, b, c, claimed };
}

const outcome = (p: Promise<unknown>) => p.then(
  () => 'ok',
  (e: { code?: string }) => `failed ${e.code}`,
);

/**
 * write (the jobs of held, in the worker's order) runs while another session
 * holds C, then cancel_many(A, B) runs; once both wait, C is let go. Returns
 * how each ended.
 */
async function cancelDuringWrite(held: Held, write: (c: pg.Client) => Promise<unknown>): Promise<{ write: string; cancel: string }> {
  const [holder, writer, canceller] = await Promise.all([sessions.open(), sessions.open(), sessions.open()]);
  await holder.c.query('BEGIN');
  await holder.c.query('SELECT 1 FROM sluice.jobs WHERE id = $1 FOR UPDATE', [held.c]);
  const written = outcome(write(writer.c));
  await lockWait(db.pool, writer.pid);
  const cancelled = outcome(canceller.c.query('SELECT sluice.cancel_many($1::bigint[])', [[held.a, held.b]]));
  await lockWait(db.pool, canceller.pid);
  await holder.c.query('COMMIT');
  return { write: await written, cancel: await cancelled };
}

/** Where each job is now: its state in jobs or job_history, or 'dead'. */
async function statesOf(held: Held): Promise<{ a: string; b: string; c: string }> {
  const { rows } = await db.pool.query<{ id: string; state: string }>(
    `SELECT id, state FROM sluice.jobs WHERE id = ANY($1::bigint[])
     UNION ALL SELECT id, state FROM sluice.job_history WHERE id = ANY($1::bigint[])
     UNION ALL SELECT id, 'dead' FROM sluice.dead_jobs WHERE id = ANY($1::bigint[])`,
    [[held.a, held.b, held.c]],
  );
  const of = (id: number) => rows.filter((r) => Number(r.id) === id).map((r) => r.state).join(',');
  return { a: of(held.a), b: of(held.b), c: of(held.c) };
}

const leaseArgs = (held: Held, worker: string) => ({
  ids: held.claimed.map((j) => j.id),
  attempts: held.claimed.map((j) => j.attempt),
  leases: held.claimed.map((j) => j.lease),
  workerId: worker,
});

describe('a cancellation of jobs another statement is writing waits for it, without a deadlock', () => {
  it('two cancel_many calls over the same jobs, in opposite orders', async () => {
    const held = await heldByWorker('lock.cancel', 'lock-cancel');
    const ended = await cancelDuringWrite(held, (c) => c.query('SELECT sluice.cancel_many($1::bigint[])', [[held.c, held.b, held.a]]));
    expect(ended).toEqual({ write: 'ok', cancel: 'ok' });
    expect(await statesOf(held)).toEqual({ a: 'cancelled', b: 'cancelled', c: 'cancelled' });
  });

  it("the worker's completion of those jobs", async () => {
    const held = await heldByWorker('lock.complete', 'lock-complete');
    const args = leaseArgs(held, 'lock-complete');
    const ended = await cancelDuringWrite(held, (c) => jobCompleteMany(c, { ...args, results: [null, null, null], runMs: [1, 1, 1] }));
    expect(ended).toEqual({ write: 'ok', cancel: 'ok' });
    expect(await statesOf(held)).toEqual({ a: 'completed', b: 'completed', c: 'completed' });
  });

  it("the worker's failure of those jobs", async () => {
    const held = await heldByWorker('lock.fail', 'lock-fail');
    const args = leaseArgs(held, 'lock-fail');
    const error = { attempt: 1, at: new Date().toISOString(), kind: 'error' as const, name: 'Error', message: 'failed' };
    const ended = await cancelDuringWrite(held, (c) =>
      jobFailMany(c, {
        ...args,
        errors: [error, error, error],
        permanent: [false, false, false],
        retryDelaysMs: [60_000, 60_000, 60_000],
        runMs: [1, 1, 1],
      }),
    );
    expect(ended).toEqual({ write: 'ok', cancel: 'ok' });
    // Retried first, then A and B cancelled.
    expect(await statesOf(held)).toEqual({ a: 'cancelled', b: 'cancelled', c: 'scheduled' });
  });

  it("the worker's release of those jobs (shutdown, pause)", async () => {
    const held = await heldByWorker('lock.release', 'lock-release');
    const ended = await cancelDuringWrite(held, (c) => jobReleaseMany(c, leaseArgs(held, 'lock-release')));
    expect(ended).toEqual({ write: 'ok', cancel: 'ok' });
    expect(await statesOf(held)).toEqual({ a: 'cancelled', b: 'cancelled', c: 'available' });
  });

  it("the worker's heartbeat over those jobs", async () => {
    const held = await heldByWorker('lock.beat', 'lock-beat');
    const ended = await cancelDuringWrite(held, (c) => workerHeartbeat(c, 'lock-beat', 600_000, leaseArgs(held, 'lock-beat').ids));
    expect(ended).toEqual({ write: 'ok', cancel: 'ok' });
    expect(await statesOf(held)).toEqual({ a: 'cancelled', b: 'cancelled', c: 'running' });
  });

  it('the rescue of those jobs, their worker having lost its session', async () => {
    const held = await heldByWorker('lock.rescue', 'lock-rescue');
    // A pid no session has (see crash-safety.test.ts), found gone after the
    // claims: with no grace, the rescuer ends the leases of the jobs.
    await db.pool.query(
      `INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at, session_pid, session_lost_at)
       VALUES ('lock-rescue', 'h', 1, '{lock.rescue}', 3, 'x', now(), $1, now())`,
      [2 ** 30],
    );
    try {
      const ended = await cancelDuringWrite(held, (c) => c.query('SELECT * FROM sluice.rescue_expired(1000, 0)'));
      expect(ended).toEqual({ write: 'ok', cancel: 'ok' });
      expect(await statesOf(held)).toEqual({ a: 'cancelled', b: 'cancelled', c: 'available' });
    } finally {
      await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'lock-rescue'`);
    }
  });
});

describe('a cancellation that meets a writer taking rows out of id order', () => {
  it('starts again after PostgreSQL ends it for a deadlock, instead of failing (a completion locks a waiting child after its own jobs)', async () => {
    const b = await enqueue('lock.cycle', 0);
    const c = await enqueue('lock.cycle', 0);
    const [writer, canceller] = await Promise.all([sessions.open(), sessions.open()]);
    // PostgreSQL ends the side whose deadlock check runs first: the writer's
    // waits long before checking, so that side is the cancellation, whatever
    // the load (the setting needs a superuser, which the tests' role is).
    await writer.c.query(`SET deadlock_timeout = '60s'`);
    // PostgreSQL checks a waiting session once, deadlock_timeout after its wait
    // began: the cancellation's check must come after the writer closes the
    // cycle, which a loaded machine can delay past the default 1 s.
    await canceller.c.query(`SET deadlock_timeout = '5s'`);
    // The writer, as a completion: C first (a job it completed), then B (a waiting child of another).
    await writer.c.query('BEGIN');
    await writer.c.query('SELECT 1 FROM sluice.jobs WHERE id = $1 FOR UPDATE', [c]);
    const cancelled = canceller.c
      .query<{ id: string }>('SELECT sluice.cancel_many($1::bigint[]) AS id', [[b, c]])
      .then((r) => r.rows.map((x) => Number(x.id)).sort((x, y) => x - y), (e: { code?: string }) => `failed ${e.code}`);
    await lockWait(db.pool, canceller.pid);
    // A cycle: the cancellation's check finds it after its deadlock_timeout (5 s) and ends that side.
    await writer.c.query('SELECT 1 FROM sluice.jobs WHERE id = $1 FOR UPDATE', [b]);
    await writer.c.query('COMMIT');
    expect(await cancelled).toEqual([b, c]);
    const { rows } = await db.pool.query<{ state: string }>(`SELECT state FROM sluice.job_history WHERE id = ANY($1::bigint[])`, [[b, c]]);
    expect(rows.map((r) => r.state)).toEqual(['cancelled', 'cancelled']);
  });
});

describe('counting into the metrics', () => {
  it("two producers' open transactions that enqueued into two queues in opposite orders both commit (their counter rows are their own)", async () => {
    // Two sessions whose server process ids are equal modulo 64, as two of any ten or so
    // usually are: the counters' shard was that remainder, and such two shared their rows.
    const opened: Session[] = [];
    let pair: [Session, Session] | undefined;
    while (!pair) {
      const s = await sessions.open();
      const twin = opened.find((o) => o.pid % 64 === s.pid % 64);
      if (twin) pair = [twin, s];
      else opened.push(s);
    }
    const [first, second] = pair;
    // The queue rows exist already: creating them is not what this is about.
    await db.pool.query(`INSERT INTO sluice.queues (name) VALUES ('metrics.x'), ('metrics.y')`);
    const enqueueInto = (s: Session, queue: string) => s.c.query(`SELECT sluice.enqueue('lock.metrics', '{}'::jsonb, queue => $1)`, [queue]);
    await first.c.query('BEGIN');
    await second.c.query('BEGIN');
    await enqueueInto(first, 'metrics.x');
    await enqueueInto(second, 'metrics.y');
    const firstAgain = outcome(enqueueInto(first, 'metrics.y'));
    await lockWaitOrSettled(db.pool, first.pid, firstAgain);
    const secondAgain = outcome(enqueueInto(second, 'metrics.x'));
    expect([await firstAgain, await secondAgain]).toEqual(['ok', 'ok']);
    await first.c.query('COMMIT');
    await second.c.query('COMMIT');
    const { rows } = await db.pool.query<{ queue: string; enqueued: string }>(
      `SELECT queue, sum(enqueued) AS enqueued FROM sluice.metrics_minutely WHERE queue LIKE 'metrics.%' GROUP BY queue ORDER BY queue`,
    );
    expect(rows).toEqual([
      { queue: 'metrics.x', enqueued: '2' },
      { queue: 'metrics.y', enqueued: '2' },
    ]);
  });
});
