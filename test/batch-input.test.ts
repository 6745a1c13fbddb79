// A batch with a member whose payload is refused (JSON cannot carry it, or it
// is over the size limit) writes nothing: not the batch row, not the members
// before it. Inside the caller's transaction that must hold even when the
// caller goes on and commits, or an orphan batch would never complete and its
// onComplete never run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PayloadTooLargeError, PayloadValidationError, Sluice, defineJob, type BatchItem } from '../packages/sluice/src/index.js';
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
