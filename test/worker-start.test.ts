// worker.start() while the database cannot be reached: it retries (logging
// each try) until the database is there, until stop(), or until
// startTimeoutMs. The outage is real: the worker points at a port nothing
// listens on, where PgBouncer (in front of the test server) is started later.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { z } from 'zod';
import { DatabaseUnavailableError, Sluice, WorkerStateError, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';
import { startPgBouncer, type Bouncer } from './helpers/pgbouncer.js';
import { freePort } from './helpers/port.js';

let db: TestDb;
const bouncers: Bouncer[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await Promise.all(bouncers.map((b) => b.stop()));
  await db.drop();
});

const job = defineJob({ name: 'ws.job', queue: 'ws', schema: z.object({ n: z.number() }) });

function urlOnPort(port: number): string {
  const u = new URL(db.url);
  u.host = `127.0.0.1:${port}`;
  return u.toString();
}

const retryLines = (lines: Record<string, unknown>[]) => lines.filter((l) => /not reachable at start; retrying/.test(String(l.msg)));

describe('worker.start() while the database is down', () => {
  it('retries, logging each try, and comes up by itself once the database is there', async (ctx) => {
    const port = await freePort();
    const { logger, lines } = captureLogs('info');
    const worker = createWorker({
      connectionString: urlOnPort(port),
      poolMode: 'transaction',
      pollIntervalMs: 100,
      logger,
      handlers: [job.handle(async (p) => p.n * 2)],
    });
    const started = worker.start().then(() => 'started', (err: unknown) => err);
    try {
      await waitUntil(() => retryLines(lines).length >= 2, { what: 'two logged retries' });
      const bouncer = await startPgBouncer(inject('adminUrl'), { port });
      if ('skip' in bouncer) return ctx.skip(bouncer.skip);
      bouncers.push(bouncer);
      expect(await started).toBe('started');
      const tries = retryLines(lines);
      expect(tries[0]).toMatchObject({ attempt: 1, err: { code: 'ECONNREFUSED' } });
      expect(tries.map((t) => t.attempt)).toEqual(tries.map((_, i) => i + 1));
      const sluice = new Sluice({ pool: db.pool });
      try {
        const id = await sluice.enqueue(job, { n: 21 });
        expect(await sluice.waitFor(id, { timeoutMs: 20_000 })).toBe(42);
      } finally {
        await sluice.close();
      }
    } finally {
      await worker.stop();
    }
  });

  it('gives up after startTimeoutMs with DatabaseUnavailableError, the connection error as its cause', async () => {
    const { logger, lines } = captureLogs('info');
    const worker = createWorker({ connectionString: urlOnPort(await freePort()), startTimeoutMs: 1_500, logger, handlers: [job.handle(async () => {})] });
    const err = await worker.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as DatabaseUnavailableError).timeoutMs).toBe(1_500);
    expect(((err as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(retryLines(lines).length).toBeGreaterThanOrEqual(1);
  });

  it('stop() ends the retries: start() rejects with WorkerStateError', async () => {
    const { logger, lines } = captureLogs('info');
    const worker = createWorker({ connectionString: urlOnPort(await freePort()), logger, handlers: [job.handle(async () => {})] });
    const started = worker.start().then(() => null, (e: unknown) => e);
    await waitUntil(() => retryLines(lines).length >= 1, { what: 'a logged retry' });
    await worker.stop();
    expect(await started).toBeInstanceOf(WorkerStateError);
  });

  it('an error that is not about reaching the database fails the start at once', async () => {
    const u = new URL(db.url);
    u.pathname = '/sluice_no_such_database';
    const { logger, lines } = captureLogs('info');
    const worker = createWorker({ connectionString: u.toString(), logger, handlers: [job.handle(async () => {})] });
    await expect(worker.start()).rejects.toMatchObject({ code: '3D000' });
    expect(retryLines(lines)).toEqual([]);
  });
});
