// sluice behind PgBouncer in transaction mode: no named prepared statements
// on the pooled connections, LISTEN over a direct connection or none at all.
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { ON_LISTEN_SESSION, count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { hashJob } from './fixtures/supervised-handlers.js';
import { sluiceCli, spawnSluiceCli } from './helpers/cli.js';
import { startPgBouncer, type Bouncer } from './helpers/pgbouncer.js';
import { inject } from 'vitest';

let db: TestDb;
let bouncer: Bouncer | null = null;
let skipReason = '';

beforeAll(async () => {
  db = await createTestDb();
  const started = await startPgBouncer(inject('adminUrl'));
  if ('skip' in started) {
    skipReason = started.skip;
    console.log(`PgBouncer tests skipped: ${skipReason}`);
  } else {
    bouncer = started;
  }
});
afterAll(async () => {
  await bouncer?.stop();
  await db.drop();
});

const job = defineJob({ name: 'pooled.work', queue: 'pooled', schema: z.object({ n: z.number() }) });

describe('behind PgBouncer (transaction mode)', () => {
  it('enqueues, runs and waits for jobs with LISTEN on a direct connection', async (ctx) => {
    if (!bouncer) return ctx.skip(skipReason);
    const pooled = bouncer.url(db.name);
    const sluice = new Sluice({ connectionString: pooled, poolMode: 'transaction', listenConnectionString: db.url });
    const results: number[] = [];
    const worker = createWorker({
      connectionString: pooled,
      poolMode: 'transaction',
      listenConnectionString: db.url,
      // Long enough that only a notification explains a prompt start.
      pollIntervalMs: 60_000,
      handlers: [job.handle(async (p) => { results.push(p.n); return { doubled: p.n * 2 }; })],
    });
    await worker.start();
    try {
      const ids = await sluice.enqueueMany(job, Array.from({ length: 300 }, (_, n) => ({ n })));
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'pooled'`)) === 300, { what: '300 done' });
      const id = await sluice.enqueue(job, { n: 21 });
      expect(await sluice.waitFor(id, { timeoutMs: 20_000 })).toEqual({ doubled: 42 });
      expect(results).toHaveLength(301);
      expect(new Set(ids).size).toBe(300);
    } finally {
      await worker.stop();
      await sluice.close();
    }
  });

  it('with no direct connection, workers poll and waitFor re-reads: everything still runs', async (ctx) => {
    if (!bouncer) return ctx.skip(skipReason);
    const pooled = bouncer.url(db.name);
    const sluice = new Sluice({ connectionString: pooled, poolMode: 'transaction' });
    const worker = createWorker({
      connectionString: pooled,
      poolMode: 'transaction',
      pollIntervalMs: 100,
      handlers: [job.handle(async (p) => p.n + 1)],
    });
    await worker.start();
    try {
      const id = await sluice.enqueue(job, { n: 1 });
      expect(await sluice.waitFor(id, { timeoutMs: 20_000 })).toBe(2);
      // No LISTEN reached the server through the pooler.
      expect(await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`)).toBe(0);
    } finally {
      await worker.stop();
      await sluice.close();
    }
  });

  it("enqueues inside the app's own transactions (plain pg and drizzle) through the pooler: every job runs once", async (ctx) => {
    if (!bouncer) return ctx.skip(skipReason);
    const pooled = bouncer.url(db.name);
    // The application's pool, made the ordinary way: nothing tells sluice it
    // sits behind a pooler, and PgBouncer has only 4 server connections.
    const appPool = new pg.Pool({ connectionString: pooled, max: 8 });
    const orm = drizzle(appPool);
    const sluice = new Sluice({ connectionString: pooled, poolMode: 'transaction', listenConnectionString: db.url });
    const txJob = defineJob({ name: 'pooled.tx', queue: 'pooled_tx', schema: z.object({ n: z.number() }) });
    const runs = new Map<number, number>();
    const workers = [1, 2].map(() =>
      createWorker({
        connectionString: pooled,
        poolMode: 'transaction',
        listenConnectionString: db.url,
        concurrency: 20,
        handlers: [txJob.handle(async (p) => void runs.set(p.n, (runs.get(p.n) ?? 0) + 1))],
      }),
    );
    await Promise.all(workers.map((w) => w.start()));
    try {
      const payloads = (t: number) => Array.from({ length: 100 }, (_, i) => ({ n: t * 100 + i }));
      const plainPg = async (t: number) => {
        const client = await appPool.connect();
        try {
          await client.query('BEGIN');
          await sluice.enqueueMany(txJob, payloads(t), { tx: client });
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          client.release();
        }
      };
      const withDrizzle = (t: number) => orm.transaction(async (tx) => void (await sluice.enqueueMany(txJob, payloads(t), { tx })));
      // 50 transactions of 100, eight at a time, so they land on changing server connections.
      const failures: unknown[] = [];
      for (let t = 0; t < 50; t += 8) {
        const round = Array.from({ length: Math.min(8, 50 - t) }, (_, k) => t + k);
        const settled = await Promise.allSettled(round.map((n) => (n % 2 === 0 ? plainPg(n) : withDrizzle(n))));
        failures.push(...settled.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason));
      }
      expect(failures.map(String)).toEqual([]);
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'pooled_tx'`)) === 5000, {
        what: '5,000 jobs done',
        timeoutMs: 120_000,
      });
      expect(runs.size).toBe(5000);
      expect([...runs.values()].every((n) => n === 1)).toBe(true);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'pooled_tx' AND (attempt <> 1 OR errors <> '[]'::jsonb)`)).toBe(0);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE queue = 'pooled_tx'`)).toBe(0);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await sluice.close();
      await appPool.end();
    }
  });

  it('the CLI works through the pooler, run after run on the same server connections', async (ctx) => {
    if (!bouncer) return ctx.skip(skipReason);
    const pooled = bouncer.url(db.name);
    // A statement one run prepared stays on PgBouncer's server connection,
    // so a named one would clash with the next run's.
    for (const args of [['stats'], ['stats'], ['cron', 'list'], ['cron', 'list'], ['jobs', 'list'], ['jobs', 'list'], ['stats']]) {
      const r = await sluiceCli([...args, '--database-url', pooled]);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
  });

  it('sluice worker --pool-mode transaction runs jobs through the pooler, LISTENing on SLUICE_LISTEN_URL', async (ctx) => {
    if (!bouncer) return ctx.skip(skipReason);
    const cli = spawnSluiceCli(
      ['worker', 'test/fixtures/supervised-handlers.ts', '--pool-mode', 'transaction', '--concurrency', '4', '--database-url', bouncer.url(db.name)],
      { SLUICE_LISTEN_URL: db.url },
    );
    const sluice = new Sluice({ pool: db.pool });
    try {
      await sluice.enqueueMany(hashJob, Array.from({ length: 200 }, (_, n) => ({ n })));
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'cpu' AND attempt = 1`)) === 200, {
        what: '200 jobs done by the CLI worker',
        timeoutMs: 60_000,
      });
      expect(await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE datname = current_database() AND ${ON_LISTEN_SESSION}`)).toBe(1);
    } finally {
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      await sluice.close();
    }
  });

  it('an unknown poolMode is a ValidationError', () => {
    expect(() => new Sluice({ connectionString: 'postgres://x/y', poolMode: 'statement' as never })).toThrow(/poolMode/);
  });
});
