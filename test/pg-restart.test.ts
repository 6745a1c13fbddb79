// A real PostgreSQL restart in the middle of a run, on a server of this
// file's own (an embedded one), so the other test files are not disturbed.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob, migrate } from '../packages/sluice/src/index.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../packages/sluice/src/demo/embedded-postgres.js';
import { count, waitUntil } from './helpers/db.js';

let server: EmbeddedServer;
let pool: pg.Pool;

beforeAll(async () => {
  server = await startEmbeddedPostgres();
  pool = new pg.Pool({ connectionString: server.url, max: 4 });
  pool.on('error', () => {});
  await migrate(pool);
});
afterAll(async () => {
  await pool.end();
  await server.stop();
});

it('workers survive a PostgreSQL restart mid-run without a process restart', async () => {
  const job = defineJob({ name: 'survive', queue: 'restart', schema: z.object({ n: z.number() }), backoff: { kind: 'fixed', baseMs: 50, jitter: 0 } });
  const ran = new Set<number>();
  const worker = createWorker({
    connectionString: server.url,
    pollIntervalMs: 100,
    heartbeatIntervalMs: 200,
    workerDeadAfterMs: 3_000,
    concurrency: 5,
    handlers: [job.handle(async (p) => { ran.add(p.n); await new Promise((r) => setTimeout(r, 10)); })],
  });
  await worker.start();
  const sluice = new Sluice({ pool });
  await sluice.enqueueMany(job, Array.from({ length: 3_000 }, (_, n) => ({ n })));
  await waitUntil(() => ran.size > 200, { what: 'some progress before the restart' });

  await server.restart();
  // The restart really happened mid-run: work was still left.
  expect(await count(pool, `SELECT count(*) n FROM sluice.jobs`)).toBeGreaterThan(0);
  await sluice.enqueueMany(job, Array.from({ length: 500 }, (_, n) => ({ n: 3_000 + n })));

  await waitUntil(async () => (await count(pool, `SELECT count(*) n FROM sluice.jobs`)) === 0, { timeoutMs: 60_000, what: 'all jobs finished' });
  expect(await count(pool, `SELECT count(*) n FROM sluice.job_history WHERE state = 'completed'`)).toBe(3_500);
  expect(await count(pool, `SELECT count(*) n FROM sluice.dead_jobs`)).toBe(0);
  expect(ran.size).toBe(3_500);
  await worker.stop();
  expect(await count(pool, `SELECT count(*) n FROM sluice.workers`)).toBe(0);
});
