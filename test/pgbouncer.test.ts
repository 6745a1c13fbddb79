// sluice behind PgBouncer in transaction mode: no named prepared statements
// on the pooled connections, LISTEN over a direct connection or none at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
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

  it('an unknown poolMode is a ValidationError', () => {
    expect(() => new Sluice({ connectionString: 'postgres://x/y', poolMode: 'statement' as never })).toThrow(/poolMode/);
  });
});
