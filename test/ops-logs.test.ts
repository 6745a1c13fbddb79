// Structured logs: every job event line carries job id, name, queue, attempt
// and duration, and no line ever carries a payload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PermanentError, Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';

const SECRET = 'top-secret-payload-value-8c1f';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

describe('structured job logs', () => {
  it('job events carry id, name, queue, attempt and duration; payloads never appear', async () => {
    const { logger, lines, raw } = captureLogs('debug');
    const schema = z.object({ email: z.string().email(), secret: z.string() });
    const ok = defineJob({ name: 'log.ok', queue: 'logs', schema });
    const retry = defineJob({ name: 'log.retry', queue: 'logs', schema, maxAttempts: 2, backoff: { kind: 'fixed', baseMs: 10, jitter: 0 } });
    const perm = defineJob({ name: 'log.perm', queue: 'logs', schema });
    const sluice = new Sluice({ pool: db.pool, logger });
    const worker = createWorker({
      connectionString: db.url,
      logger,
      pollIntervalMs: 100,
      handlers: [
        ok.handle(async () => {}),
        retry.handle(async () => { throw new Error('transient'); }),
        perm.handle(async () => { throw new PermanentError('refused'); }),
      ],
    });
    await worker.start();
    try {
      const payload = { email: 'a@b.co', secret: SECRET };
      const ids = [await sluice.enqueue(ok, payload), await sluice.enqueue(retry, payload), await sluice.enqueue(perm, payload)];
      // A row written by SQL that fails the schema: its validation error must not quote it.
      const { rows } = await db.pool.query(`SELECT sluice.enqueue('log.ok', $1::jsonb, queue => 'logs') AS id`, [JSON.stringify({ email: SECRET, secret: SECRET })]);
      ids.push(Number(rows[0].id));
      await waitUntil(async () => {
        const states = await Promise.all(ids.map(async (id) => (await sluice.getJob(id)).state));
        return states.join() === 'completed,dead,dead,dead';
      }, { what: 'all jobs finished' });
    } finally {
      await worker.stop();
    }
    const jobLines = lines.filter((l) => l.jobId !== undefined);
    const messages = new Set(jobLines.map((l) => l.msg));
    expect(messages).toEqual(new Set(['job completed', 'job attempt failed; will retry', 'job failed for good']));
    for (const l of jobLines) {
      expect(l).toMatchObject({ jobId: expect.any(Number), job: expect.stringMatching(/^log\./), queue: 'logs', attempt: expect.any(Number) });
      expect(l.durationMs, String(l.msg)).toEqual(expect.any(Number));
    }
    expect(jobLines.filter((l) => l.msg === 'job failed for good').map((l) => l.job).sort()).toEqual(['log.ok', 'log.perm', 'log.retry']);
    expect(jobLines.find((l) => l.msg === 'job attempt failed; will retry')).toMatchObject({ job: 'log.retry', attempt: 1, level: 30 });
    expect(raw.join('')).not.toContain(SECRET);
  });
});
