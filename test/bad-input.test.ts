// Bad input of every kind: each gets a named error that says which field is
// wrong, and writes nothing (row counts of every sluice table are compared
// before and after).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  JobNotFoundError,
  OptionsConflictError,
  PayloadTooLargeError,
  PayloadValidationError,
  PermanentError,
  Sluice,
  SluiceError,
  UnknownJobError,
  ValidationError,
  createWorker,
  defineJob,
  type JobDefinition,
} from '../packages/sluice/src/index.js';
import { historyDropExpiredPartitions } from '../packages/sluice/src/sql/maintenance.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { rejections, validation } from './helpers/rejects.js';

// Written out here rather than imported, so the test states the rule itself.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const MISSING_ID = 999_999_999;

let db: TestDb;
let sluice: Sluice;

const job = defineJob({
  name: 'bad-input.job',
  queue: 'bad-input',
  schema: z.object({
    user: z.object({ email: z.string().email() }),
    count: z.number().int(),
    note: z.string().optional(),
  }),
});
const okPayload = { user: { email: 'a@example.com' }, count: 1 };
const anyJob = defineJob({ name: 'bad-input.any', queue: 'bad-input-any', schema: z.unknown() });
const textJob = defineJob({ name: 'bad-input.text', queue: 'bad-input-text', schema: z.object({ body: z.string() }) });

const { snapshot, expectRejected } = rejections(() => db.pool);

/** A raw SQL call that must raise with the given SQLSTATE and write nothing. */
async function expectSqlRejected(text: string, values: unknown[], code: string, mentions: string): Promise<void> {
  const before = await snapshot();
  let caught: unknown;
  try {
    await db.pool.query(text, values);
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${text} to raise`).toBeDefined();
  expect(caught).toMatchObject({ code });
  expect((caught as Error).message).toContain(mentions);
  expect(await snapshot()).toEqual(before);
}

let deadId = 0;

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool, jobs: [job] });
  // One real dead job, made the way production makes them.
  const doomed = defineJob({ name: 'bad-input.doomed', queue: 'bad-input-dead', schema: z.object({}) });
  const worker = createWorker({
    connectionString: db.url,
    pollIntervalMs: 100,
    handlers: [doomed.handle(() => { throw new PermanentError('never works'); })],
  });
  await worker.start();
  try {
    deadId = await sluice.enqueue(doomed, {});
    await waitUntil(async () => (await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [deadId])) === 1, {
      what: 'a dead job',
    });
  } finally {
    await worker.stop();
  }
});

afterAll(async () => {
  await sluice?.close();
  await db?.drop();
});

describe('defineJob', () => {
  const badNames = ['', ' ', 'has space', '-leading-dash', '.leading-dot', '_leading', 'ünïcode', 'semi;colon', 'slash/x', "quote'", 'new\nline', 'trailing\n', 'a'.repeat(129)];

  it.each(badNames)('rejects the job name %j', async (name) => {
    await expectRejected(() => defineJob({ name, schema: z.object({}) }), validation('defineJob.name'));
  });

  it.each(badNames)('rejects the queue name %j', async (queue) => {
    await expectRejected(() => defineJob({ name: 'fine', queue, schema: z.object({}) }), validation('defineJob.queue'));
  });

  it('accepts a name of exactly 128 characters and refuses 129', async () => {
    expect(defineJob({ name: `a${'.'.repeat(127)}`, schema: z.object({}) }).name).toHaveLength(128);
    await expectRejected(() => defineJob({ name: `a${'.'.repeat(128)}`, schema: z.object({}) }), validation('defineJob.name'));
  });

  it('rejects a name that is not a string', async () => {
    await expectRejected(() => defineJob({ name: 42 as unknown as string, schema: z.object({}) }), validation('defineJob.name'));
  });

  it.each([
    ['maxAttempts', { maxAttempts: 0 }],
    ['maxAttempts', { maxAttempts: 1.5 }],
    ['priority', { priority: 40_000 }],
    ['timeoutMs', { timeoutMs: -5 }],
  ] as const)('rejects a bad %s', async (field, extra) => {
    await expectRejected(() => defineJob({ name: 'fine', schema: z.object({}), ...extra }), validation(`defineJob.${field}`));
  });

  it('rejects unknown option keys, naming the key', async () => {
    await expectRejected(
      () => defineJob({ name: 'fine', schema: z.object({}), retries: 3 } as never),
      validation('defineJob', { mentions: 'retries' }),
    );
  });

  it('rejects a missing options object with a named error, not a TypeError', async () => {
    await expectRejected(() => defineJob(undefined as never), { cls: ValidationError, name: 'ValidationError', mentions: 'defineJob' });
  });
});

describe('enqueue: job and payload', () => {
  it('an unknown job name is an UnknownJobError naming it', async () => {
    const err = await expectRejected(() => sluice.enqueue('nope', {}), { cls: UnknownJobError, name: 'UnknownJobError', mentions: '"nope"' });
    expect((err as UnknownJobError).jobName).toBe('nope');
    await expectRejected(() => sluice.enqueueMany('nope', [{}]), { cls: UnknownJobError, name: 'UnknownJobError', mentions: 'nope' });
  });

  it('a job argument that is not a definition is a ValidationError', async () => {
    await expectRejected(() => sluice.enqueue({} as JobDefinition, {}), validation('job'));
    await expectRejected(() => sluice.enqueue(null as unknown as JobDefinition, {}), validation('job'));
  });

  it('a payload failing its schema names the field path and not the value', async () => {
    const secret = 'secret-7f3a@@not-an-email';
    const err = await expectRejected(() => sluice.enqueue(job, { user: { email: secret }, count: 1 }), {
      cls: PayloadValidationError,
      name: 'PayloadValidationError',
      mentions: ['user.email', 'bad-input.job'],
      notMentions: [secret, '7f3a'],
    });
    expect((err as PayloadValidationError).issues.map((i) => i.path)).toEqual(['user.email']);
    expect(JSON.stringify((err as PayloadValidationError).issues)).not.toContain('7f3a');
  });

  it('a payload of the wrong type names the field and not the value', async () => {
    await expectRejected(() => sluice.enqueue(job, { user: { email: 'a@b.co' }, count: 'sekrit-count' as never }), {
      cls: PayloadValidationError,
      name: 'PayloadValidationError',
      mentions: 'count',
      notMentions: ['sekrit'],
    });
  });

  it('one bad payload in enqueueMany writes none of the batch', async () => {
    const payloads = [okPayload, okPayload, { user: { email: 'nope' }, count: 1 }, okPayload];
    await expectRejected(() => sluice.enqueueMany(job, payloads), {
      cls: PayloadValidationError,
      name: 'PayloadValidationError',
      mentions: 'user.email',
    });
  });

  it('payloads that are not an array are a ValidationError', async () => {
    await expectRejected(() => sluice.enqueueMany(job, 'x' as never), validation('payloads'));
    await expectRejected(() => sluice.enqueueMany(job, okPayload as never), validation('payloads'));
  });

  // Valid JSON strings that PostgreSQL's jsonb cannot store: they pass a zod
  // string schema, so sluice must turn the database's refusal into a named error.
  it.each([
    ['a NUL character', 'before\u0000after'],
    ['a lone surrogate', 'before\ud800after'],
    ['a lone low surrogate', 'before\udc00after'],
  ])('a payload string with %s gets a named error naming the field', async (_what, body) => {
    await expectRejected(() => sluice.enqueue(textJob, { body }), {
      cls: PayloadValidationError,
      name: 'PayloadValidationError',
      mentions: 'body',
      notMentions: ['before'],
    });
  });
});

describe('enqueue: payload size', () => {
  it('over a small maxPayloadBytes is PayloadTooLargeError; exactly at it is accepted', async () => {
    const small = new Sluice({ pool: db.pool, maxPayloadBytes: 64 });
    const sized = defineJob({ name: 'bad-input.sized', queue: 'bad-input-sized', schema: z.object({ s: z.string() }) });
    // {"s":"…"} is 8 bytes plus the string.
    const err = await expectRejected(() => small.enqueue(sized, { s: 'x'.repeat(57) }), {
      cls: PayloadTooLargeError,
      name: 'PayloadTooLargeError',
      mentions: ['payload', '65', '64'],
      notMentions: ['xxxx'],
    });
    expect(err).toMatchObject({ sizeBytes: 65, limitBytes: 64, jobName: 'bad-input.sized' });
    // Multi-byte characters count in bytes, not characters: 29 × 2 bytes + 8 = 66.
    await expectRejected(() => small.enqueue(sized, { s: 'é'.repeat(29) }), {
      cls: PayloadTooLargeError,
      name: 'PayloadTooLargeError',
      mentions: '66',
    });
    const before = await count(db.pool, 'SELECT count(*) n FROM sluice.jobs');
    const id = await small.enqueue(sized, { s: 'x'.repeat(56) });
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs')).toBe(before + 1);
    await db.pool.query('DELETE FROM sluice.jobs WHERE id = $1', [id]);
    await small.close();
  });

  it('one oversize payload in enqueueMany writes none of the batch', async () => {
    const small = new Sluice({ pool: db.pool, maxPayloadBytes: 64 });
    const sized = defineJob({ name: 'bad-input.sized', queue: 'bad-input-sized', schema: z.object({ s: z.string() }) });
    await expectRejected(() => small.enqueueMany(sized, [{ s: 'a' }, { s: 'b'.repeat(100) }, { s: 'c' }]), {
      cls: PayloadTooLargeError,
      name: 'PayloadTooLargeError',
      mentions: 'payload',
    });
  });

  it('over the default 1 MiB is PayloadTooLargeError', async () => {
    const big = 'y'.repeat(1_048_576);
    const err = await expectRejected(() => sluice.enqueue(anyJob, { big }), {
      cls: PayloadTooLargeError,
      name: 'PayloadTooLargeError',
      mentions: '1048576',
      notMentions: ['yyyy'],
    });
    expect((err as PayloadTooLargeError).limitBytes).toBe(1_048_576);
  });

  it('a raised maxPayloadBytes admits larger payloads, and still refuses ones over it', async () => {
    const roomy = new Sluice({ pool: db.pool, maxPayloadBytes: 2 * 1_048_576 });
    const id = await roomy.enqueue(anyJob, { big: 'z'.repeat(1_200_000) });
    expect((await roomy.getJob(id)).state).toBe('available');
    await db.pool.query('DELETE FROM sluice.jobs WHERE id = $1', [id]);
    const before = await snapshot();
    const err = await roomy.enqueue(anyJob, { big: 'z'.repeat(2_200_000) }).then(
      () => null,
      (e: unknown) => e,
    );
    await roomy.close();
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as Error).message).toContain('payload');
    expect((err as Error).message).not.toContain('zzzz');
    expect(await snapshot()).toEqual(before);
  });

  it.each([0, -1, 1.5, Number.NaN])('a maxPayloadBytes of %s is refused', async (maxPayloadBytes) => {
    await expectRejected(() => new Sluice({ pool: db.pool, maxPayloadBytes }), validation('maxPayloadBytes'));
  });
});

describe('enqueue: options', () => {
  it.each([
    ['delayMs', { delayMs: -1 }],
    ['delayMs', { delayMs: Number.NaN }],
    ['delayMs', { delayMs: Number.POSITIVE_INFINITY }],
    ['delayMs', { delayMs: Number.NEGATIVE_INFINITY }],
    ['delayMs', { delayMs: '100' }],
    ['runAt', { runAt: new Date('not a date') }],
    ['runAt', { runAt: '2030-01-01T00:00:00Z' }],
    ['runAt', { runAt: Date.now() + 1000 }],
    ['runAt', { runAt: new Date(-8.64e15) }],
    ['runAt', { runAt: new Date(Date.UTC(10_000, 0, 1)) }],
    ['priority', { priority: 1.5 }],
    ['priority', { priority: 32_768 }],
    ['priority', { priority: -32_769 }],
    ['priority', { priority: Number.NaN }],
    ['maxAttempts', { maxAttempts: 0 }],
    ['maxAttempts', { maxAttempts: -3 }],
    ['maxAttempts', { maxAttempts: 2.5 }],
    ['maxAttempts', { maxAttempts: 1001 }],
    ['uniqueKey', { uniqueKey: '' }],
    ['tags', { tags: 'urgent' }],
  ] as const)('a bad %s (%s) is a ValidationError naming it', async (field, options) => {
    await expectRejected(() => sluice.enqueue(job, okPayload, options as never), validation(`options.${field}`));
    await expectRejected(() => sluice.enqueueMany(job, [okPayload, okPayload], options as never), validation(`options.${field}`));
  });

  it('runAt together with delayMs is refused', async () => {
    await expectRejected(
      () => sluice.enqueue(job, okPayload, { runAt: new Date(Date.now() + 60_000), delayMs: 1_000 }),
      validation('options.delayMs', { mentions: ['runAt', 'delayMs'] }),
    );
  });

  it('unknown option keys are refused, naming the key', async () => {
    await expectRejected(() => sluice.enqueue(job, okPayload, { delay: 5 } as never), validation('options', { mentions: 'delay' }));
    await expectRejected(() => sluice.enqueue(job, okPayload, { runAt: new Date(), queue: 'elsewhere' } as never), validation('options', { mentions: 'queue' }));
    await expectRejected(() => sluice.enqueueMany(job, [okPayload], { delay: 5 } as never), validation('options', { mentions: 'delay' }));
  });

  // EnqueueManyOptions leaves uniqueKey out: accepting it silently would
  // enqueue duplicates the caller believes are deduplicated.
  it('enqueueMany refuses uniqueKey instead of ignoring it', async () => {
    await expectRejected(() => sluice.enqueueMany(job, [okPayload], { uniqueKey: 'k' } as never), validation('options.uniqueKey'));
  });

  it('options that are not an object are refused', async () => {
    await expectRejected(() => sluice.enqueue(job, okPayload, 'soon' as never), validation('options'));
    await expectRejected(() => sluice.enqueue(job, okPayload, [] as never), validation('options'));
  });

  it.each([
    ['an empty object', {}],
    ['a number', 42],
    ['a string', 'postgres://localhost/db'],
    ['null', null],
    ['an object whose query is not a function', { query: 'SELECT 1' }],
    ['a drizzle-like object without a client', { session: {} }],
  ])('a tx that is %s is a ValidationError naming tx', async (_what, tx) => {
    await expectRejected(() => sluice.enqueue(job, okPayload, { tx } as never), validation('tx'));
    await expectRejected(() => sluice.getJob(deadId, { tx } as never), validation('tx'));
  });
});

describe('waitFor and queue settings: values past what they can hold', () => {
  it('a waitFor timeoutMs over 2^31 - 1 is a ValidationError, not an immediate timeout', async () => {
    await expectRejected(() => sluice.waitFor(deadId as never, { timeoutMs: 2 ** 31 }), validation('options.timeoutMs'));
  });

  it.each([
    ['retentionMs', { retentionMs: Number.MAX_SAFE_INTEGER }],
    ['alertMaxErrorRate', { alertMaxErrorRate: 1e-50 }],
  ] as const)('a %s out of range is a ValidationError naming it', async (field, settings) => {
    await expectRejected(() => sluice.queues.configure('bad_settings', settings), validation(`settings.${field}`));
  });

  it('a retention_ms written by hand past 100 years does not stop history maintenance for every queue', async () => {
    await db.pool.query(`INSERT INTO sluice.queues (name, retention_ms) VALUES ('forever_q', 9007199254740991)`);
    try {
      await expect(db.pool.query('SELECT sluice.prune_history()')).resolves.toBeDefined();
      await expect(historyDropExpiredPartitions(db.pool)).resolves.toEqual(expect.any(Array));
    } finally {
      await db.pool.query(`DELETE FROM sluice.queues WHERE name = 'forever_q'`);
    }
  });
});

describe('ids', () => {
  it('getJob, cancel and retry of a missing id are JobNotFoundError naming it', async () => {
    for (const call of [() => sluice.getJob(MISSING_ID), () => sluice.cancel(MISSING_ID), () => sluice.retry(MISSING_ID)]) {
      const err = await expectRejected(call, { cls: JobNotFoundError, name: 'JobNotFoundError', mentions: String(MISSING_ID) });
      expect((err as JobNotFoundError).ids).toEqual([MISSING_ID]);
    }
  });

  it('cancel and retry of a finished job are JobNotFoundError and change nothing', async () => {
    const id = await sluice.enqueue(job, okPayload, { delayMs: 60_000 });
    await sluice.cancel(id);
    expect((await sluice.getJob(id)).state).toBe('cancelled');
    await expectRejected(() => sluice.cancel(id), { cls: JobNotFoundError, name: 'JobNotFoundError', mentions: String(id) });
    await expectRejected(() => sluice.retry(id), { cls: JobNotFoundError, name: 'JobNotFoundError', mentions: String(id) });
    expect((await sluice.getJob(id)).state).toBe('cancelled');
  });

  it('replayDead of a missing id is JobNotFoundError', async () => {
    const err = await expectRejected(() => sluice.replayDead([MISSING_ID]), {
      cls: JobNotFoundError,
      name: 'JobNotFoundError',
      mentions: String(MISSING_ID),
    });
    expect((err as JobNotFoundError).ids).toEqual([MISSING_ID]);
  });

  it('replayDead([realDeadId, missing]) replays nothing', async () => {
    expect((await sluice.getJob(deadId)).state).toBe('dead');
    const err = await expectRejected(() => sluice.replayDead([deadId, MISSING_ID]), {
      cls: JobNotFoundError,
      name: 'JobNotFoundError',
      mentions: String(MISSING_ID),
    });
    expect((err as JobNotFoundError).ids).toEqual([MISSING_ID]);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [deadId])).toBe(1);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE id = $1', [deadId])).toBe(0);
    expect((await sluice.getJob(deadId)).state).toBe('dead');
  });

  const badIds: unknown[] = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null, undefined, 10n, {}];

  it.each(badIds.map((id) => [String(id), id]))('an id of %s is a ValidationError for every call', async (_label, id) => {
    const bad = id as number;
    await expectRejected(() => sluice.getJob(bad), validation('id'));
    await expectRejected(() => sluice.cancel(bad), validation('id'));
    await expectRejected(() => sluice.retry(bad), validation('id'));
    await expectRejected(() => sluice.replayDead([bad]), validation('id'));
    await expectRejected(() => sluice.replayDead([deadId, bad]), validation('id'));
  });

  it('replayDead needs a non-empty array', async () => {
    await expectRejected(() => sluice.replayDead([]), validation('ids'));
    await expectRejected(() => sluice.replayDead(deadId as never), validation('ids'));
  });
});

describe('createWorker', () => {
  const handlers = [job.handle(() => undefined)];

  it('refuses empty or malformed handlers', async () => {
    await expectRejected(() => createWorker({ connectionString: db.url, handlers: [] }), validation('createWorker.handlers'));
    await expectRejected(() => createWorker({ connectionString: db.url } as never), validation('createWorker.handlers'));
    await expectRejected(() => createWorker({ connectionString: db.url, handlers: [{}] as never }), validation('createWorker.handlers.0'));
    await expectRejected(
      () => createWorker({ connectionString: db.url, handlers: [...handlers, { job, handler: 'run' }] as never }),
      validation('createWorker.handlers.1'),
    );
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 10_001, '4'])('refuses concurrency %s', async (concurrency) => {
    await expectRejected(
      () => createWorker({ connectionString: db.url, handlers, concurrency: concurrency as number }),
      validation('createWorker.concurrency'),
    );
  });

  it.each([
    ['pollIntervalMs', { pollIntervalMs: 0 }],
    ['heartbeatIntervalMs', { heartbeatIntervalMs: 5 }],
    ['queues', { queues: [] }],
    ['queues.0', { queues: ['bad queue'] }],
    ['prefetch', { prefetch: -1 }],
  ] as const)('refuses a bad %s', async (field, extra) => {
    await expectRejected(() => createWorker({ connectionString: db.url, handlers, ...extra } as never), validation(`createWorker.${field}`));
  });

  it('refuses unknown option keys, naming the key', async () => {
    await expectRejected(
      () => createWorker({ connectionString: db.url, handlers, concurency: 4 } as never),
      validation('createWorker', { mentions: 'concurency' }),
    );
  });
});

describe('SQL functions', () => {
  it('sluice.enqueue refuses an invalid job name', async () => {
    await expectSqlRejected(`SELECT sluice.enqueue($1, '{}')`, ['bad name'], '22023', 'job name');
    await expectSqlRejected(`SELECT sluice.enqueue($1, '{}')`, ['x'.repeat(129)], '22023', 'job name');
    await expectSqlRejected(`SELECT sluice.enqueue($1, '{}')`, [''], '22023', 'job name');
    await expectSqlRejected(`SELECT sluice.enqueue(NULL, '{}')`, [], '22023', 'job name');
  });

  it('sluice.enqueue refuses an invalid queue name', async () => {
    await expectSqlRejected(`SELECT sluice.enqueue('sql.ok', '{}', queue => $1)`, ['no spaces here'], '22023', 'queue name');
  });

  it('sluice.enqueue refuses out-of-range priority and max_attempts', async () => {
    await expectSqlRejected(`SELECT sluice.enqueue('sql.ok', '{}', priority => 40000)`, [], '22023', 'priority');
    await expectSqlRejected(`SELECT sluice.enqueue('sql.ok', '{}', max_attempts => 0)`, [], '22023', 'max_attempts');
  });

  it('sluice.enqueue refuses a payload over 1 MiB', async () => {
    await expectSqlRejected(`SELECT sluice.enqueue('sql.ok', jsonb_build_object('s', repeat('x', 1048576)))`, [], '54000', 'larger');
  });

  it.each([`'{"n":1}'::jsonb`, `'"text"'::jsonb`, `'42'::jsonb`, `'null'::jsonb`, 'NULL'])(
    'sluice.enqueue_many refuses payloads %s that are not an array',
    async (payloads) => {
      await expectSqlRejected(`SELECT sluice.enqueue_many('sql.ok', ${payloads})`, [], '22023', 'payloads must be a JSON array');
    },
  );

  it('sluice.dead_replay with a missing id raises and replays nothing', async () => {
    await expectSqlRejected(`SELECT sluice.dead_replay($1::bigint[])`, [[MISSING_ID]], 'P0002', String(MISSING_ID));
    await expectSqlRejected(`SELECT sluice.dead_replay($1::bigint[])`, [[deadId, MISSING_ID]], 'P0002', String(MISSING_ID));
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [deadId])).toBe(1);
  });
});

describe('properties', () => {
  // jsonb cannot hold NUL characters or lone surrogates (see the payload tests above).
  const storable = (v: unknown) => !/\\u0000|\\ud[89a-f]/i.test(JSON.stringify(v));
  const payload = fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }).filter(storable);

  it('enqueueMany returns ids in input order for any array of small JSON payloads', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(payload, { minLength: 1, maxLength: 25 }), async (payloads) => {
        const ids = await sluice.enqueueMany(anyJob, payloads);
        expect(ids).toHaveLength(payloads.length);
        expect(new Set(ids).size).toBe(ids.length);
        const { rows } = await db.pool.query<{ id: string; payload: unknown }>(
          'SELECT id, payload FROM sluice.jobs WHERE id = ANY($1::bigint[])',
          [ids],
        );
        const byId = new Map(rows.map((r) => [Number(r.id), r.payload]));
        expect(ids.map((id) => byId.get(id))).toEqual(payloads.map((p) => JSON.parse(JSON.stringify(p))));
        await db.pool.query('DELETE FROM sluice.jobs WHERE id = ANY($1::bigint[])', [ids]);
      }),
      { numRuns: 60 },
    );
  });

  it('a name is accepted iff it matches the name pattern; otherwise ValidationError and nothing written', async () => {
    const nameChars = fc.constantFrom(...'aZ09._:-', ' ', '/', 'é', '\n', '\u0000');
    const names = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 140 }),
      fc.string({ maxLength: 20 }),
      fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,130}$/),
      fc.string({ unit: nameChars, minLength: 120, maxLength: 135 }),
      fc.constantFrom('a'.repeat(128), 'a'.repeat(129), 'abc\n', '\nabc', 'Ω', '0', '-', 'a b'),
    );
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(names, async (name) => {
        const valid = NAME_RE.test(name);
        const before = await snapshot();
        // PostgreSQL text cannot hold NUL, so such a name cannot even be looked up.
        const queueExisted =
          valid && (await count(db.pool, 'SELECT count(*) n FROM sluice.queues WHERE name = $1', [name])) > 0;
        let jobDef: JobDefinition | undefined;
        let jobErr: unknown;
        try {
          jobDef = defineJob({ name, queue: name, schema: z.object({}) });
        } catch (err) {
          jobErr = err;
        }
        // The SQL function applies the same rule.
        let sqlId: number | undefined;
        let sqlErr: { code?: string } | undefined;
        try {
          const { rows } = await db.pool.query<{ id: string }>('SELECT sluice.enqueue($1, $2::jsonb, queue => $3) AS id', [name, '{}', name]);
          sqlId = Number(rows[0]!.id);
        } catch (err) {
          sqlErr = err as { code?: string };
        }
        if (valid) {
          accepted++;
          expect(jobErr).toBeUndefined();
          expect(sqlErr).toBeUndefined();
          const id = await sluice.enqueue(jobDef!, {});
          const { rows } = await db.pool.query('SELECT name, queue FROM sluice.jobs WHERE id = ANY($1::bigint[])', [[id, sqlId]]);
          expect(rows).toEqual([{ name, queue: name }, { name, queue: name }]);
          await db.pool.query('DELETE FROM sluice.jobs WHERE id = ANY($1::bigint[])', [[id, sqlId]]);
          if (!queueExisted) await db.pool.query('DELETE FROM sluice.queues WHERE name = $1', [name]);
        } else {
          refused++;
          expect(jobErr).toBeInstanceOf(ValidationError);
          expect((jobErr as ValidationError).name).toBe('ValidationError');
          expect((jobErr as ValidationError).field).toBe('defineJob.name');
          expect(sqlErr).toBeDefined();
          // A NUL cannot even reach the function: PostgreSQL text refuses it (22021).
          expect(sqlErr!.code).toBe(name.includes('\u0000') ? '22021' : '22023');
        }
        expect(await snapshot()).toEqual(before);
      }),
      { numRuns: 300 },
    );
    // Both sides of the rule were exercised.
    expect(accepted).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(20);
  });
});

describe('client options', () => {
  it('an unknown key (a typo of maxPayloadBytes) is refused, naming it', async () => {
    await expectRejected(() => new Sluice({ pool: db.pool, maxPayloadByte: 64 } as never), validation('options', { mentions: 'maxPayloadByte' }));
  });

  it.each([
    ['jobs.1', [job, null]],
    ['jobs.0', [{ name: 42 }]],
    ['jobs', 'bad-input.job'],
    ['jobs', { [job.name]: job }],
  ])('jobs that are not job definitions are refused as %s, not a TypeError', async (field, jobs) => {
    await expectRejected(() => new Sluice({ pool: db.pool, jobs } as never), validation(field));
  });

  it('a logger that is not a pino logger is refused by the client and by createWorker, not a TypeError', async () => {
    await expectRejected(() => new Sluice({ pool: db.pool, logger: {} } as never), validation('logger'));
    await expectRejected(() => createWorker({ pool: db.pool, handlers: [job.handle(() => undefined)], logger: {} } as never), validation('logger'));
  });

  it('readPool together with readConnectionString is an OptionsConflictError: one of them would be ignored', async () => {
    const err = await expectRejected(() => new Sluice({ pool: db.pool, readPool: db.pool, readConnectionString: db.url }), {
      cls: OptionsConflictError,
      name: 'OptionsConflictError',
      mentions: ['readPool', 'readConnectionString'],
    });
    expect((err as OptionsConflictError).fields).toEqual(['readPool', 'readConnectionString']);
  });

  it('a poolMode other than session or transaction is refused with a pool given too', async () => {
    await expectRejected(() => new Sluice({ pool: db.pool, poolMode: 'statement' } as never), validation('poolMode'));
  });

  it.each([
    ['a number', 42],
    ['an object', { host: 'localhost' }],
    ['an out-of-range port', 'postgres://localhost:99999/db'],
    ['a broken host', 'postgres://[::1/db'],
  ])('a connectionString that is %s is refused at construction, not at the first query', async (_what, connectionString) => {
    await expectRejected(() => new Sluice({ connectionString } as never), validation('connectionString'));
  });

  it('a malformed readConnectionString or listenConnectionString is refused naming it', async () => {
    await expectRejected(() => new Sluice({ pool: db.pool, readConnectionString: 'postgres://h:port/db' }), validation('readConnectionString'));
    await expectRejected(() => new Sluice({ pool: db.pool, listenConnectionString: 7 } as never), validation('listenConnectionString'));
  });
});

describe('options of the other calls: unknown keys are refused as enqueue refuses them', () => {
  it('waitFor({ timeout }) (a typo of timeoutMs) is refused at once, not waited on for the default 30 s', async () => {
    const id = await sluice.enqueue(job, okPayload, { delayMs: 3_600_000 });
    const started = performance.now();
    await expectRejected(() => sluice.waitFor(id, { timeout: 100 } as never), validation('options', { mentions: 'timeout' }));
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('enqueueBatch({ onComplet }) (a typo of onComplete) is refused and writes nothing', async () => {
    await expectRejected(
      () => sluice.enqueueBatch([{ job, payload: okPayload }], { onComplet: { job } } as never),
      validation('options', { mentions: 'onComplet' }),
    );
    await expectRejected(
      () => sluice.enqueueBatch([{ job, payload: okPayload }], { onComplete: { job, paylod: {} } } as never),
      validation('options.onComplete', { mentions: 'paylod' }),
    );
  });

  it('publish({ sequental }) (a typo of sequential) is refused', async () => {
    await expectRejected(() => sluice.publish('bad-input.topic', {}, { sequental: true } as never), validation('options', { mentions: 'sequental' }));
  });

  it.each([
    ['getJob', () => sluice.getJob(deadId, { txn: null } as never)],
    ['cancel', () => sluice.cancel(deadId, { txn: null } as never)],
    ['retry', () => sluice.retry(deadId, { txn: null } as never)],
    ['replayDead', () => sluice.replayDead([deadId], { txn: null } as never)],
    ['registerJobs', () => sluice.registerJobs({ txn: null } as never)],
    ['queues.configure', () => sluice.queues.configure('bad-input', { weight: 2 }, { txn: null } as never)],
    ['queues.pause', () => sluice.queues.pause('bad-input', { txn: null } as never)],
  ])('%s refuses an unknown option key', async (_call, call) => {
    await expectRejected(call, validation('options', { mentions: 'txn' }));
  });

  it.each([
    ['null', null],
    ['a string', 'now'],
  ])('options that are %s are a ValidationError, not a TypeError', async (_what, options) => {
    await expectRejected(() => sluice.queues.configure('bad-input', { weight: 2 }, options as never), validation('options'));
    await expectRejected(() => sluice.getJob(deadId, options as never), validation('options'));
    await expectRejected(() => sluice.waitFor(deadId as never, options as never), validation('options'));
  });
});

// The worker protocol's calls are SQL functions anyone may call. Arrays that
// did not line up were padded with NULLs: part of a call applied and the rest
// was left running without a word, a NULL permanent flag left a failed job
// running, counted as failed, and a NULL lease left one running for good.
describe('worker protocol calls from SQL with bad arrays or leases', () => {
  const arraysJob = defineJob({ name: 'bad-input.arrays', queue: 'bad-input-arrays', schema: z.unknown() });

  it('complete, fail, release and extend_leases raise 22023 and leave the claimed jobs as they were', async () => {
    const ids = await sluice.enqueueMany(arraysJob, [{}, {}]);
    await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['bad-input-arrays'], ARRAY[10], 'bad-arrays', 600000)`);
    const rows = async () =>
      (await db.pool.query(`SELECT id, state, attempt, locked_by, locked_until, errors FROM sluice.jobs WHERE id = ANY($1) ORDER BY id`, [ids])).rows;
    const claimed = await rows();
    expect(claimed.map((r) => r.state)).toEqual(['running', 'running']);
    const [a, b] = ids;
    const error = JSON.stringify({ message: 'boom' });
    await expectSqlRejected('SELECT sluice.job_complete_many($1::bigint[], $2::integer[])', [[a, b], [1]], '22023', 'one entry per job');
    await expectSqlRejected('SELECT sluice.job_complete_many($1::bigint[], $2::integer[], NULL, $3::integer[])', [[a, b], [1, 1], [5]], '22023', 'one entry per job');
    await expectSqlRejected('SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[])', [[a, b], [1, 1], [error, error], [false]], '22023', 'one entry per job');
    await expectSqlRejected('SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[])', [[a], [1], [error], [null]], '22023', 'true or false');
    await expectSqlRejected('SELECT sluice.release_leases($1, $2::bigint[], $3::integer[], NULL)', ['bad-arrays', [a, b], [1]], '22023', 'one entry per job');
    await expectSqlRejected('SELECT sluice.extend_leases($1, NULL, $2::bigint[])', ['bad-arrays', [a, b]], '22023', 'lease_ms');
    await expectSqlRejected(`SELECT sluice.extend_leases($1, 'NaN', $2::bigint[])`, ['bad-arrays', [a, b]], '22023', 'lease_ms');
    expect(await rows()).toEqual(claimed);
  });
});
