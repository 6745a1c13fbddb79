import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, UniqueKeyConflictError, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { jobs } from '../packages/sluice/src/schema.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { noop, sendEmail } from './helpers/jobs.js';

let db: TestDb;
let sluice: Sluice;

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool, jobs: [sendEmail, noop] });
  await db.pool.query('CREATE TABLE orders (id serial primary key, total int not null)');
});
afterAll(async () => {
  await sluice.close();
  await db.drop();
});

describe('enqueue in the caller transaction', () => {
  it('a pg client transaction that rolls back leaves no job', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO orders (total) VALUES (10)');
      const id = await sluice.enqueue(sendEmail, { to: 'rollback@example.com' }, { tx: client });
      expect(id).toBeGreaterThan(0);
      await client.query('ROLLBACK');
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE id = $1', [id])).toBe(0);
    } finally {
      client.release();
    }
  });

  it('the business row and the job become visible together on commit', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: number }>('INSERT INTO orders (total) VALUES (20) RETURNING id');
      const jobId = await sluice.enqueue(sendEmail, { to: 'commit@example.com' }, { tx: client });
      // Before commit, another connection sees neither.
      expect(await count(db.pool, 'SELECT count(*) n FROM orders WHERE id = $1', [rows[0]!.id])).toBe(0);
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE id = $1', [jobId])).toBe(0);
      await client.query('COMMIT');
      expect(await count(db.pool, 'SELECT count(*) n FROM orders WHERE id = $1', [rows[0]!.id])).toBe(1);
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE id = $1', [jobId])).toBe(1);
    } finally {
      client.release();
    }
  });

  it('accepts a drizzle db and a drizzle transaction', async () => {
    const d = drizzle(db.pool);
    const viaDb = await sluice.enqueue(sendEmail, { to: 'db@example.com' }, { tx: d });
    let inTx = 0;
    await expect(
      d.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO orders (total) VALUES (30)`);
        inTx = await sluice.enqueue(sendEmail, { to: 'tx@example.com' }, { tx });
        throw new Error('abort the business transaction');
      }),
    ).rejects.toThrow('abort the business transaction');
    const committed = await d.transaction(async (tx) => sluice.enqueue(sendEmail, { to: 'ok@example.com' }, { tx }));
    const found = await d.select({ id: jobs.id }).from(jobs).where(sql`${jobs.id} IN (${viaDb}, ${inTx}, ${committed})`);
    expect(found.map((r) => r.id).sort()).toEqual([viaDb, committed].sort());
  });

  it('stores the job with the definition defaults and the validated payload', async () => {
    const id = await sluice.enqueue(sendEmail, { to: 'a@b.co' });
    const job = await sluice.getJob(id);
    expect(job).toMatchObject({ name: 'email.send', queue: 'emails', state: 'available', attempt: 0, maxAttempts: 3 });
    expect(job.payload).toEqual({ to: 'a@b.co', subject: 'hello' });
  });

  it('enqueueMany writes the whole batch in order, by job name too', async () => {
    const ids = await sluice.enqueueMany('noop', Array.from({ length: 500 }, (_, n) => ({ n })));
    expect(ids).toHaveLength(500);
    const { rows } = await db.pool.query<{ id: string; n: number }>(
      `SELECT id, (payload->>'n')::int AS n FROM sluice.jobs WHERE id = ANY($1::bigint[])`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [Number(r.id), r.n]));
    expect(ids.map((id) => byId.get(id))).toEqual(Array.from({ length: 500 }, (_, n) => n));
  });

  it('enqueueMany stores each payload exactly as given and counts them in the metrics', async () => {
    // Each payload is serialized once and joined into the statement's array:
    // escapes, a literal backslash-u, non-ASCII text and nesting must survive.
    const textJob = defineJob({ name: 'enqueue.text', queue: 'enqueue-text', schema: z.object({ s: z.string(), more: z.unknown().optional() }) });
    const payloads = [
      { s: 'plain' },
      { s: 'quote " backslash \\ tab \t newline \n' },
      { s: 'looks like an escape: \\u0000 and \\ud800' },
      { s: 'é ü 中文 🎉' },
      { s: 'nested', more: { a: [1, 2.5, null, true, { b: 'c' }] } },
    ];
    const ids = await sluice.enqueueMany(textJob, payloads);
    const { rows } = await db.pool.query<{ id: string; payload: unknown }>(
      'SELECT id, payload FROM sluice.jobs WHERE id = ANY($1::bigint[])',
      [ids],
    );
    const byId = new Map(rows.map((r) => [Number(r.id), r.payload]));
    expect(ids.map((id) => byId.get(id))).toEqual(payloads);
    expect(await count(db.pool, `SELECT sum(enqueued) n FROM sluice.metrics_minutely WHERE queue = 'enqueue-text'`)).toBe(5);
  });

  it('delayed jobs wait as scheduled; runAt and delayMs both work', async () => {
    const a = await sluice.enqueue(noop, { n: 1 }, { delayMs: 60_000 });
    const b = await sluice.enqueue(noop, { n: 2 }, { runAt: new Date(Date.now() + 3_600_000) });
    expect((await sluice.getJob(a)).state).toBe('scheduled');
    expect((await sluice.getJob(b)).state).toBe('scheduled');
  });

  it('uniqueKey returns the live job instead of a duplicate', async () => {
    const first = await sluice.enqueue(noop, { n: 7 }, { uniqueKey: 'only-once' });
    const second = await sluice.enqueue(noop, { n: 8 }, { uniqueKey: 'only-once' });
    expect(second).toBe(first);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE unique_key = 'only-once'`)).toBe(1);
  });

  it('a uniqueKey held by a live job of another name in the queue is a UniqueKeyConflictError, not that job\'s id', async () => {
    const other = defineJob({ name: 'other.kind', queue: noop.queue, schema: z.object({}) });
    const held = await sluice.enqueue(noop, { n: 9 }, { uniqueKey: 'shared-key' });
    const err = await sluice.enqueue(other, {}, { uniqueKey: 'shared-key' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UniqueKeyConflictError);
    expect(String((err as Error).message)).not.toContain('shared-key');
    expect(String((err as Error).message)).not.toContain(String(held));
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE unique_key = 'shared-key'`)).toBe(1);
    // Within the unique window, only a completed job of the same name stands in for a new one.
    await db.pool.query(`SELECT sluice.move_to_history(ARRAY[$1::bigint], 'completed')`, [held]);
    const windowed = { uniqueKey: 'shared-key', uniqueWindowMs: 3_600_000 };
    const fresh = await sluice.enqueue(other, {}, windowed);
    expect(fresh).not.toBe(held);
    expect((await sluice.getJob(fresh)).name).toBe('other.kind');
    await db.pool.query(`SELECT sluice.move_to_history(ARRAY[$1::bigint], 'completed')`, [fresh]);
    expect(await sluice.enqueue(noop, { n: 10 }, windowed)).toBe(held);
  });
});

describe('enqueue from SQL', () => {
  it('sluice.enqueue uses the registered defaults of the job name', async () => {
    await sluice.registerJobs();
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT sluice.enqueue('email.send', '{"to":"sql@example.com"}', run_at => now() + interval '5 min') AS id`,
    );
    const job = await sluice.getJob(Number(rows[0]!.id));
    expect(job).toMatchObject({ queue: 'emails', maxAttempts: 3, state: 'scheduled' });
  });

  it('sluice.enqueue_many inserts a batch in one call', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM sluice.enqueue_many('noop', '[{"n":1},{"n":2},{"n":3}]', queue => 'sqlq') AS id`,
    );
    expect(rows).toHaveLength(3);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'sqlq'`)).toBe(3);
  });

  it('sends one NOTIFY per statement carrying the queue name, the count and the first id', async () => {
    const listener = await db.pool.connect();
    const got: { channel: string; payload?: string }[] = [];
    listener.on('notification', (m) => got.push({ channel: m.channel, payload: m.payload }));
    await listener.query('LISTEN sluice_jobs');
    const { rows } = await db.pool.query<{ id: string }>(`SELECT id FROM sluice.enqueue_many('noop', '[{"n":1},{"n":2},{"n":3}]', queue => 'notified') AS id`);
    await new Promise((r) => setTimeout(r, 200));
    await listener.query('UNLISTEN *');
    listener.release();
    // Queue, count, first id, and the jobs' run_at in epoch microseconds.
    expect(got).toEqual([{ channel: 'sluice_jobs', payload: expect.stringMatching(new RegExp(`^notified 3 ${Math.min(...rows.map((r) => Number(r.id)))} \\d{16}$`)) }]);
  });
});

// A NOTIFY holds PostgreSQL's cluster-wide notify lock through its commit's
// WAL flush, so an enqueue that is its own transaction commits without one
// and wakes the workers from a second transaction (jobs/wake-workers.sql).
describe('waking workers after the commit', () => {
  const inTx = defineJob({ name: 'wake.in_tx', queue: 'wake_in_tx', schema: z.object({ n: z.number() }) });
  const idle = defineJob({ name: 'wake.idle', queue: 'wake_idle', schema: z.object({ n: z.number() }) });
  let client: Sluice;
  beforeAll(() => {
    client = new Sluice({ pool: db.pool, jobs: [inTx, idle] });
  });
  afterAll(() => client.close());

  /** A LISTEN session on sluice_jobs whose payloads arrive in commit order. */
  async function listen() {
    const client = await db.pool.connect();
    const payloads: string[] = [];
    let arrived: () => void = () => {};
    client.on('notification', (m) => {
      payloads.push(m.payload ?? '');
      arrived();
    });
    await client.query('LISTEN sluice_jobs');
    return {
      payloads,
      /**
       * What arrived since the last call: waits for a marker sent now, since
       * every notification committed before it arrives before it.
       */
      async settle(): Promise<string[]> {
        const marker = `marker-${payloads.length}`;
        const seen = new Promise<void>((resolve) => (arrived = () => payloads.includes(marker) && resolve()));
        await db.pool.query(`SELECT pg_notify('sluice_jobs', $1)`, [marker]);
        await seen;
        return payloads.splice(0).filter((p) => !p.startsWith('marker-'));
      },
      async close() {
        await client.query('UNLISTEN *');
        client.release();
      },
    };
  }

  it('enqueue_many with wake_after_commit notifies nobody; wake_workers then names the queue of jobs still available', async () => {
    const l = await listen();
    try {
      const { rows } = await db.pool.query<{ id: string }>(
        `SELECT id FROM sluice.enqueue_many('noop', '[{"n":1}]', queue => 'wake_later', wake_after_commit => true) AS id`,
      );
      expect(await l.settle()).toEqual([]);
      const ids = rows.map((r) => r.id);
      await db.pool.query('SELECT sluice.wake_workers($1::bigint[])', [ids]);
      expect(await l.settle()).toEqual([expect.stringMatching(new RegExp(`^wake_later 1 ${ids[0]} \\d{16}$`))]);
      await db.pool.query(`UPDATE sluice.jobs SET state = 'running', attempt = 1, locked_by = 'w', locked_until = now() + interval '1 minute', attempted_at = now() WHERE id = ANY($1::bigint[])`, [ids]);
      await db.pool.query('SELECT sluice.wake_workers($1::bigint[])', [ids]);
      expect(await l.settle()).toEqual([]);
    } finally {
      await l.close();
    }
  });

  it('an enqueue inside the caller transaction still notifies on that commit', async () => {
    const l = await listen();
    const tx = await db.pool.connect();
    try {
      await tx.query('BEGIN');
      const id = await client.enqueue(inTx, { n: 1 }, { tx });
      expect(await l.settle()).toEqual([]);
      await tx.query('COMMIT');
      expect(await l.settle()).toEqual([expect.stringMatching(new RegExp(`^wake_in_tx 1 ${id} \\d{16}$`))]);
    } finally {
      tx.release();
      await l.close();
    }
  });

  it('a job enqueued to an idle worker starts on the wake-up, not at a poll', async () => {
    const started: number[] = [];
    let ran: (id: number) => void = () => {};
    const worker = createWorker({
      pool: db.pool,
      queues: ['wake_idle'],
      // No poll during the test: only a notification can start the second job.
      pollIntervalMs: 3_600_000,
      handlers: [idle.handle((_p, ctx) => void (started.push(ctx.job.id), ran(ctx.job.id)))],
    });
    const runs = (id: number) => new Promise<void>((resolve) => (ran = (got) => got === id && resolve()));
    await worker.start();
    try {
      const first = await client.enqueue(idle, { n: 1 });
      if (!started.includes(first)) await runs(first);
      // The fetcher saw the queue drained: it sleeps until a notification.
      await waitUntil(() => worker.load.running === 0 && worker.load.pendingAcks === 0, { what: 'the first job acknowledged' });
      const second = client.enqueue(idle, { n: 2 });
      const secondRan = second.then((id) => (started.includes(id) ? undefined : runs(id)));
      await secondRan;
      expect(started).toEqual([first, await second]);
    } finally {
      await worker.stop();
    }
  });
});
