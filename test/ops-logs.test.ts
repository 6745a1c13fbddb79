// Structured logs: every job event line carries job id, name, queue, attempt
// and duration, and no line ever carries a payload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PermanentError, Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
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

describe('database errors in logs and job errors', () => {
  const ROW_SECRET = 'row-secret-4f9a-never-logged';

  it("a CHECK violation's failing row (payload included) appears in no log line; code, constraint and table do", async () => {
    const { logger, lines, raw } = captureLogs('debug');
    const blocked = defineJob({ name: 'logsec.blocked', queue: 'logsec', schema: z.object({ secret: z.string() }) });
    // A real CHECK violation on the row the completion writes: PostgreSQL's
    // detail then quotes that whole row, payload included.
    await db.pool.query(`ALTER TABLE sluice.job_history ADD CONSTRAINT logsec_no_blocked CHECK (name <> 'logsec.blocked')`);
    const worker = createWorker({ connectionString: db.url, logger, pollIntervalMs: 100, handlers: [blocked.handle(async () => ({ echoed: ROW_SECRET }))] });
    await worker.start();
    try {
      const id = await new Sluice({ pool: db.pool }).enqueue(blocked, { secret: ROW_SECRET });
      const failed = await waitUntil(async () => lines.find((l) => l.msg === 'writing completions failed; retrying') ?? null, { what: 'the refused completion logged' });
      expect(failed.err).toMatchObject({ code: '23514', constraint: 'logsec_no_blocked', schema: 'sluice', table: expect.stringMatching(/^job_history/) });
      await db.pool.query('ALTER TABLE sluice.job_history DROP CONSTRAINT logsec_no_blocked');
      await waitUntil(async () => (await count(db.pool, 'SELECT count(*) n FROM sluice.job_history WHERE id = $1', [id])) === 1, { what: 'the completion written once the constraint is gone' });
    } finally {
      await worker.stop();
      await db.pool.query('ALTER TABLE sluice.job_history DROP CONSTRAINT IF EXISTS logsec_no_blocked');
    }
    expect(raw.join('')).not.toContain(ROW_SECRET);
  });

  it("a handler's database errors are stored and logged without the values they quote", async () => {
    const { logger, raw } = captureLogs('debug');
    await db.pool.query('CREATE TABLE IF NOT EXISTS app_cards (id serial PRIMARY KEY, number text NOT NULL CHECK (length(number) = 16))');
    const checkFails = defineJob({ name: 'logsec.check', queue: 'logsec', schema: z.object({ card: z.string() }), maxAttempts: 1 });
    // invalid_text_representation quotes the refused input in its message.
    const castFails = defineJob({ name: 'logsec.cast', queue: 'logsec', schema: z.object({ card: z.string() }), maxAttempts: 1 });
    const sluice = new Sluice({ pool: db.pool, logger });
    const worker = createWorker({
      connectionString: db.url,
      logger,
      pollIntervalMs: 100,
      handlers: [
        checkFails.handle(async ({ card }) => {
          await db.pool.query('INSERT INTO app_cards (number) VALUES ($1)', [card]);
        }),
        castFails.handle(async ({ card }) => {
          await db.pool.query('SELECT $1::text::int', [card]);
        }),
      ],
    });
    await worker.start();
    try {
      const ids = [await sluice.enqueue(checkFails, { card: ROW_SECRET }), await sluice.enqueue(castFails, { card: ROW_SECRET })];
      await waitUntil(async () => (await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = ANY($1)', [ids])) === 2, { what: 'both jobs dead' });
      const stored = await Promise.all(ids.map((id) => sluice.getJob(id)));
      expect(stored.map((j) => j.errors[0]?.message)).toEqual([
        expect.stringContaining('violates check constraint "app_cards_number_check"'),
        expect.stringContaining('invalid input syntax for type integer'),
      ]);
      expect(JSON.stringify(stored.map((j) => j.errors))).not.toContain(ROW_SECRET);
    } finally {
      await worker.stop();
    }
    expect(raw.join('')).toContain('invalid input syntax for type integer');
    expect(raw.join('')).not.toContain(ROW_SECRET);
  });
});
