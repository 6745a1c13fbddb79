// A batch with a member whose payload is refused (JSON cannot carry it, or it
// is over the size limit) writes nothing: not the batch row, not the members
// before it. Inside the caller's transaction that must hold even when the
// caller goes on and commits, or an orphan batch would never complete and its
// onComplete never run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PayloadTooLargeError, PayloadValidationError, QueueFullError, Sluice, defineJob, type BatchItem } from '../packages/sluice/src/index.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { recordingPool } from './helpers/recording-pool.js';
import { rejections } from './helpers/rejects.js';

const MAX_PAYLOAD_BYTES = 512;

let db: TestDb;
let sluice: Sluice;
const { snapshot, expectRejected } = rejections(() => db.pool);

const first = defineJob({ name: 'batch-input.first', queue: 'batch-input', schema: z.unknown() });
const second = defineJob({ name: 'batch-input.second', queue: 'batch-input', schema: z.unknown() });
const done = defineJob({ name: 'batch-input.done', queue: 'batch-input', schema: z.object({}).passthrough() });

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool, maxPayloadBytes: MAX_PAYLOAD_BYTES });
});

afterAll(async () => {
  await sluice?.close();
  await db?.drop();
});

const bigint = { cls: PayloadValidationError, name: 'PayloadValidationError', mentions: ['n', 'BigInt'], notMentions: ['secret'] };
const tooLarge = { cls: PayloadTooLargeError, name: 'PayloadTooLargeError', mentions: ['batch-input.', `${MAX_PAYLOAD_BYTES}-byte`], notMentions: ['secret'] };
const huge = { blob: 'secret'.repeat(MAX_PAYLOAD_BYTES) };

// [what, the members, the error expected]. A member of another job goes in
// another statement; one of the same job shares the first member's statement.
const cases: [string, () => BatchItem[], typeof bigint | typeof tooLarge][] = [
  ['a BigInt in the second member, of another job', () => [{ job: first, payload: { ok: 1 } }, { job: second, payload: { n: 10n, note: 'secret' } }], bigint],
  ['a BigInt in the second member, of the same job', () => [{ job: first, payload: { ok: 1 } }, { job: first, payload: { n: 10n, note: 'secret' } }], bigint],
  ['the second member over the size limit', () => [{ job: first, payload: { ok: 1 } }, { job: second, payload: huge }], tooLarge],
  [
    'a member past the first chunk over the size limit',
    () => [...Array.from({ length: 1_001 }, (_, i) => ({ job: first, payload: { i } })), { job: first, payload: huge }],
    tooLarge,
  ],
];

describe.each(cases)('enqueueBatch with %s', (_what, items, expected) => {
  it("in the caller's transaction: throws the named error, and after the caller commits no job and no batch of it exist", async () => {
    const before = await snapshot();
    const client = await db.pool.connect();
    let caught: unknown;
    try {
      await client.query('BEGIN');
      try {
        await sluice.enqueueBatch(items(), { tx: client, onComplete: { job: done } });
      } catch (err) {
        caught = err;
      }
      // The caller handles the refusal and goes on: nothing was written, so committing is safe.
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(caught).toBeInstanceOf(expected.cls);
    expect((caught as Error).name).toBe(expected.name);
    for (const m of expected.mentions) expect((caught as Error).message).toContain(m);
    for (const m of expected.notMentions) expect((caught as Error).message).not.toContain(m);
    expect(await snapshot()).toEqual(before);
  });

  it('without a transaction: throws the named error before sending any statement of the batch', async () => {
    const recording = recordingPool(db.url);
    const own = new Sluice({ pool: recording.pool, maxPayloadBytes: MAX_PAYLOAD_BYTES });
    try {
      await own.ready();
      recording.sent.length = 0;
      await expectRejected(() => own.enqueueBatch(items(), { onComplete: { job: done } }), expected);
      expect(recording.sent).toEqual([]);
    } finally {
      await own.close();
      await recording.pool.end();
    }
  });
});

describe('the onComplete payload', () => {
  it('over the size limit is refused at enqueueBatch, before anything is written (its enqueue would fail the last member\'s completion)', async () => {
    await expectRejected(
      () => sluice.enqueueBatch([{ job: first, payload: { ok: 1 } }], { onComplete: { job: done, payload: huge } }),
      { cls: PayloadTooLargeError, name: 'PayloadTooLargeError', mentions: ['batch-input.done', `${MAX_PAYLOAD_BYTES}-byte`], notMentions: ['secret'] },
    );
  });

  it('over the 1 MiB the callback is enqueued with is refused by sluice.batch_create, counts included', async () => {
    const body = JSON.stringify({ blob: 'x'.repeat(1_048_576 - 20) });
    await expect(db.pool.query(`SELECT sluice.batch_create(1, 'batch-input.done', $1::jsonb)`, [body])).rejects.toMatchObject({ code: '54000' });
    expect(await snapshot()).toMatchObject({ batches: 0 });
  });
});

describe("a batch refused inside the caller's transaction writes nothing, and the transaction goes on", () => {
  const plain = defineJob({ name: 'batch-input.plain', queue: 'batch-input-plain', schema: z.object({ k: z.string() }) });

  beforeAll(async () => {
    await db.pool.query('CREATE TABLE batch_input_marks (mark text)');
  });

  /** Enqueues the batch in a transaction of the caller's that also writes a row of its own; commits; returns the batch's error. */
  async function refusedInCallerTx(items: BatchItem[], mark: string): Promise<unknown> {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO batch_input_marks VALUES ($1)', [mark]);
      const err = await sluice.enqueueBatch(items, { tx: client, onComplete: { job: done } }).then(
        () => 'the batch was written',
        (e: unknown) => e,
      );
      await client.query('COMMIT');
      return err;
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  // The statement refused raises in SQL: without a savepoint the caller's
  // transaction would be aborted, its COMMIT a rollback. (A block queue's
  // QueueFullError, thrown after its wait, is undone the same way: see
  // test/flow-input.test.ts, where a step can shorten the wait.)
  it('a member into a full queue with overflow reject', async () => {
    const full = defineJob({ name: 'batch-input.full', queue: 'batch-input-full', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('batch-input-full', { maxDepth: 1, overflow: 'reject' });
    await sluice.enqueue(full, { k: 'filler' });
    const before = await snapshot();
    const err = await refusedInCallerTx([{ job: plain, payload: { k: 'first' } }, { job: full, payload: { k: 'second' } }], 'reject');
    expect(err).toBeInstanceOf(QueueFullError);
    expect(await snapshot()).toEqual(before);
    expect((await db.pool.query('SELECT mark FROM batch_input_marks')).rows).toEqual([{ mark: 'reject' }]);
  });

  it('more members in a block queue than its maxDepth is a QueueFullError at once, not after the wait for room', async () => {
    const small = defineJob({ name: 'batch-input.small', queue: 'batch-input-small', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('batch-input-small', { maxDepth: 2, overflow: 'block' });
    const started = performance.now();
    // Two jobs of one queue: two statements, each of which fits alone.
    const other = defineJob({ name: 'batch-input.small2', queue: 'batch-input-small', schema: z.object({ k: z.string() }) });
    await expectRejected(
      () => sluice.enqueueBatch([{ job: small, payload: { k: 'a' } }, { job: small, payload: { k: 'b' } }, { job: other, payload: { k: 'c' } }]),
      { cls: QueueFullError, name: 'QueueFullError', mentions: 'batch-input-small' },
    );
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('the onComplete job', () => {
  it("runs in its definition's queue, though nothing else registered its job type", async () => {
    const member = defineJob({ name: 'batch-input.member', queue: 'batch-input-members', schema: z.object({}) });
    const callback = defineJob({ name: 'batch-input.callback', queue: 'batch-input-callbacks', schema: z.object({}).passthrough(), maxAttempts: 3 });
    const { batchId, ids } = await sluice.enqueueBatch([{ job: member, payload: {} }], { onComplete: { job: callback } });
    // Finished as a worker would finish it.
    await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['batch-input-members'], ARRAY[10], 'by-hand', 600000)`);
    await db.pool.query('SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])', [ids[0]]);
    const { rows } = await db.pool.query('SELECT callback_job_id FROM sluice.batches WHERE id = $1', [batchId]);
    const job = await sluice.getJob(Number(rows[0].callback_job_id));
    expect(job).toMatchObject({ name: 'batch-input.callback', queue: 'batch-input-callbacks', maxAttempts: 3 });
  });

  it("a payload its job's schema refuses (counts included) is a PayloadValidationError at enqueueBatch, and nothing is written", async () => {
    const ready = defineJob({
      name: 'batch-input.ready',
      queue: 'batch-input',
      schema: z.object({ albumId: z.number(), batchId: z.number(), total: z.number(), completed: z.number(), dead: z.number(), cancelled: z.number() }),
    });
    await expectRejected(
      () => sluice.enqueueBatch([{ job: first, payload: { ok: 1 } }], { onComplete: { job: ready, payload: { albumId: 'secret-album' } } }),
      { cls: PayloadValidationError, name: 'PayloadValidationError', mentions: ['batch-input.ready', 'albumId'], notMentions: ['secret'] },
    );
    // The counts the callback receives are not the caller's to give.
    await expect(sluice.enqueueBatch([{ job: first, payload: { ok: 1 } }], { onComplete: { job: ready, payload: { albumId: 7 } } })).resolves.toBeDefined();
  });
});

// From SQL a caller gives sluice.enqueue_many any batch id. A member past the
// batch's total (or of a finished batch) was counted when it ended, broke
// batches_counts_check, and failed every end of that job: the whole
// acknowledgement it came in (other jobs' completions retried forever), its
// cancel, and every rescue round once it died on its last attempt.
describe('batch members from SQL', () => {
  const sqlError = (message: string) => ({ code: '22023', message: expect.stringContaining(message) });

  it('a batch that does not exist, or has finished, takes no member, and nothing is written', async () => {
    const before = await snapshot();
    await expect(db.pool.query(`SELECT sluice.enqueue_many('batch-sql.member', '[{}]', queue => 'batch-sql', batch_id => 987654321)`))
      .rejects.toMatchObject(sqlError('no unfinished batch with id 987654321'));
    const { rows: [{ id: batchId }] } = await db.pool.query(`SELECT sluice.batch_create(1) AS id`);
    const { rows: [{ id: member }] } = await db.pool.query(`SELECT id FROM sluice.enqueue_many('batch-sql.member', '[{}]', queue => 'batch-sql', batch_id => $1) AS e(id)`, [batchId]);
    await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['batch-sql'], ARRAY[10], 'by-hand', 600000)`);
    await db.pool.query('SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])', [member]);
    const mid = await snapshot();
    await expect(db.pool.query(`SELECT sluice.enqueue_many('batch-sql.member', '[{}]', queue => 'batch-sql', batch_id => $1)`, [batchId]))
      .rejects.toMatchObject(sqlError(`no unfinished batch with id ${batchId}`));
    expect(await snapshot()).toEqual(mid);
    expect(mid.jobs).toBe(before.jobs);
  });

  it('a member past the total ends uncounted, and the acknowledgement it comes in completes every job in it', async () => {
    const { rows: [{ id: batchId }] } = await db.pool.query(`SELECT sluice.batch_create(1) AS id`);
    const { rows: members } = await db.pool.query<{ id: string }>(
      `SELECT id FROM sluice.enqueue_many('batch-sql.member', '[{}, {}]', queue => 'batch-sql-over', batch_id => $1) AS e(id)`, [batchId]);
    const { rows: [{ id: other }] } = await db.pool.query(`SELECT id FROM sluice.enqueue_many('batch-sql.other', '[{}]', queue => 'batch-sql-over') AS e(id)`);
    await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['batch-sql-over'], ARRAY[10], 'by-hand', 600000)`);
    await db.pool.query('SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])', [members[0]!.id]);
    const { rows: done } = await db.pool.query<{ id: string }>(
      'SELECT sluice.job_complete_many(ARRAY[$1::bigint, $2::bigint], ARRAY[1, 1]) AS id', [members[1]!.id, other]);
    expect(done.map((r) => r.id).sort()).toEqual([members[1]!.id, String(other)].sort());
    const { rows: [batch] } = await db.pool.query('SELECT total, completed, dead, cancelled, finished_at IS NOT NULL AS finished FROM sluice.batches WHERE id = $1', [batchId]);
    expect(batch).toEqual({ total: 1, completed: 1, dead: 0, cancelled: 0, finished: true });
  });
});
