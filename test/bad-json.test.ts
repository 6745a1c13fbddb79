// Payloads JSON cannot carry faithfully are refused, not altered: a named
// error says where (the path) and what (the kind of value), never the value,
// and nothing is written. A handler's result that JSON cannot carry is not
// stored, with a warning, and the job still completes. Text PostgreSQL
// cannot store as it is (a NUL, a lone surrogate) in keys, tags, settings and
// schedules is refused the same way, never a raw database error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { main } from '../packages/sluice/src/cli/main.js';
import { createHttpApi } from '../packages/sluice/src/http/index.js';
import { PayloadValidationError, Sluice, ValidationError, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';
import { rejections, validation } from './helpers/rejects.js';

let db: TestDb;
let sluice: Sluice;
const { expectRejected } = rejections(() => db.pool);

const anyJob = defineJob({ name: 'bad-json.any', queue: 'bad-json', schema: z.unknown() });
const TOKEN = 'bad-json-token-0123456789';

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool, jobs: [anyJob] });
  await db.pool.query(`INSERT INTO sluice.subscriptions (topic, job_name) VALUES ('bad-json.topic', 'bad-json.any')`);
});

afterAll(async () => {
  await sluice?.close();
  await db?.drop();
});

function circular(): unknown {
  const o = { a: { list: [] as unknown[] } };
  o.a.list.push(o);
  return o;
}

// [what, payload, path named, word the reason contains]
const cases: [string, () => unknown, string, string][] = [
  ['a circular structure', circular, 'a.list.0', 'circular'],
  ['a BigInt', () => ({ n: 10n }), 'n', 'BigInt'],
  ['a function', () => ({ deep: { f: () => 1 } }), 'deep.f', 'function'],
  ['a symbol', () => ({ s: Symbol('x') }), 's', 'symbol'],
  ['undefined at the top', () => undefined, '(root)', 'undefined'],
  ['undefined in an array', () => ({ list: [1, undefined] }), 'list.1', 'undefined'],
  ['a function in an array', () => ({ list: [() => 1] }), 'list.0', 'function'],
  ['NaN', () => ({ n: Number.NaN }), 'n', 'NaN'],
  ['Infinity', () => ({ deep: { n: Number.POSITIVE_INFINITY } }), 'deep.n', 'Infinity'],
  ['-Infinity in an array', () => ({ xs: [1, Number.NEGATIVE_INFINITY] }), 'xs.1', 'Infinity'],
  ['a lone surrogate', () => ({ s: 'secret\ud800value' }), 's', 'surrogate'],
  // A key that is no identifier is data, shown as * (never its characters).
  ['a lone surrogate in a key', () => ({ ['k\udc00']: 1 }), '*', 'surrogate'],
  ['NaN under a key that is data', () => ({ users: { 'secret@example.com': Number.NaN } }), 'users.*', 'NaN'],
  ['a getter that throws', () => ({ get boom(): never { throw new Error('secret') } }), '(root)', 'cannot be serialized'],
  // JSON.stringify writes an invalid Date as null and a Map or a Set as {}.
  ['an invalid Date', () => ({ when: new Date('secret'), note: 'secret' }), 'when', 'invalid Date'],
  ['an invalid Date in an array', () => ({ list: [new Date(Number.NaN)] }), 'list.0', 'invalid Date'],
  ['a Map', () => ({ m: new Map([['k', 'secret']]) }), 'm', 'Map'],
  ['a Set', () => ({ deep: { s: new Set(['secret']) } }), 'deep.s', 'Set'],
  // What a toJSON() returns is stored, so it is held to the same rules.
  ['NaN in what a toJSON() returns', () => ({ a: { toJSON: () => ({ n: Number.NaN }) } }), 'a.n', 'NaN'],
  ['undefined in an array a toJSON() returns', () => ({ a: { toJSON: () => [1, undefined] } }), 'a.1', 'undefined'],
  ['a toJSON() that returns undefined', () => ({ a: { toJSON: () => undefined } }), 'a', 'undefined'],
  ['a toJSON() that returns a function', () => ({ a: { toJSON: () => () => 'secret' } }), 'a', 'function'],
  ['a Map in what a toJSON() returns', () => ({ a: { toJSON: () => ({ list: [new Map()] }) } }), 'a.list.0', 'Map'],
  ['an invalid Date in what a toJSON() returns', () => ({ a: { toJSON: () => ({ at: new Date('secret') }) } }), 'a.at', 'invalid Date'],
  // JSON calls no toJSON() of a toJSON() result: a Date there is written as {}.
  ['a Date a toJSON() returns', () => ({ a: { toJSON: () => new Date(0) } }), 'a', 'Date'],
  ['a boxed NaN', () => ({ n: Object(Number.NaN) as unknown }), 'n', 'NaN'],
  // Built-ins whose contents live where JSON does not look: it writes {}, or a typed array as an object keyed by index.
  ['an Error', () => ({ err: new Error('secret') }), 'err', 'Error'],
  ['an Error with fields of its own', () => ({ err: Object.assign(new TypeError('secret'), { code: 'E_SECRET' }) }), 'err', 'Error'],
  ['a RegExp', () => ({ re: /secret/ }), 're', 'RegExp'],
  ['an ArrayBuffer', () => ({ buf: new ArrayBuffer(8) }), 'buf', 'ArrayBuffer'],
  ['a Uint8Array', () => ({ bytes: new Uint8Array([1, 2, 3]) }), 'bytes', 'Uint8Array'],
  ['a Float64Array in an array', () => ({ list: [new Float64Array(2)] }), 'list.0', 'Float64Array'],
  ['a BigInt64Array', () => ({ big: new BigInt64Array(2) }), 'big', 'BigInt64Array'],
  ['a DataView', () => ({ view: new DataView(new ArrayBuffer(4)) }), 'view', 'DataView'],
  ['a Promise', () => ({ p: Promise.resolve('secret') }), 'p', 'Promise'],
  ['a WeakRef', () => ({ ref: new WeakRef({ s: 'secret' }) }), 'ref', 'WeakRef'],
  ['a generator', () => ({ gen: (function* () { yield 'secret'; })() }), 'gen', 'iterator'],
  ['an array iterator', () => ({ it: ['secret'].values() }), 'it', 'iterator'],
  // A Buffer's own toJSON() is not called on what another toJSON() returns.
  ['a Buffer a toJSON() returns', () => ({ a: { toJSON: () => Buffer.from('secret') } }), 'a', 'Uint8Array'],
];

const payloadError = (path: string, word: string) => ({
  cls: PayloadValidationError,
  name: 'PayloadValidationError',
  mentions: [path, word],
  notMentions: ['secret'],
});

describe.each(cases)('a payload holding %s', (_what, make, path, word) => {
  it('is refused by enqueue, enqueueMany, flow and enqueueBatch, naming the path', async () => {
    const err = await expectRejected(() => sluice.enqueue(anyJob, make()), payloadError(path, word));
    expect((err as PayloadValidationError).issues.map((i) => i.path)).toEqual([path === '(root)' ? '' : path]);
    await expectRejected(() => sluice.enqueueMany(anyJob, [{ ok: 1 }, make(), { ok: 2 }]), payloadError(path, word));
    await expectRejected(
      () => sluice.flow([{ key: 'first', job: anyJob, payload: { ok: 1 } }, { key: 'second', job: anyJob, payload: make(), after: ['first'] }]),
      payloadError(path, word),
    );
    await expectRejected(() => sluice.enqueueBatch([{ job: anyJob, payload: { ok: 1 } }, { job: anyJob, payload: make() }]), payloadError(path, word));
  });

  it('is refused by publish, naming payload and the path', async () => {
    const field = path === '(root)' ? 'payload' : `payload.${path}`;
    await expectRejected(() => sluice.publish('bad-json.topic', make()), validation(field, { mentions: [field, word], notMentions: ['secret'] }));
  });

  it.skipIf(path === '(root)')('is refused by a schedule and by a batch callback', async () => {
    const field = `schedule.payload.${path}`;
    await expectRejected(
      () => sluice.schedules.add({ name: 'bad-json.cron', cron: '* * * * *', job: anyJob, payload: make() }),
      validation(field, { mentions: [field, word], notMentions: ['secret'] }),
    );
    await expectRejected(
      () => sluice.schedules.add({ name: 'bad-json.cron', cron: '* * * * *', job: 'bad-json.any', payload: make() }),
      validation(field, { mentions: [field, word] }),
    );
    const onComplete = `onComplete.payload.${path}`;
    await expectRejected(
      () => sluice.enqueueBatch([{ job: anyJob, payload: { ok: 1 } }], { onComplete: { job: anyJob, payload: make() as Record<string, unknown> } }),
      validation(onComplete, { mentions: [onComplete, word] }),
    );
  });
});

describe('what JSON carries is accepted as it is', () => {
  it('undefined object properties are left out, Dates become their ISO text, nested arrays and unicode round-trip', async () => {
    const at = new Date('2030-01-02T03:04:05.000Z');
    const id = await sluice.enqueue(anyJob, { a: undefined, at, list: [[1, 2.5, -0], { b: null }], text: 'é😀\u2028' });
    const { rows } = await db.pool.query('SELECT payload FROM sluice.jobs WHERE id = $1', [id]);
    expect(rows[0].payload).toEqual({ at: at.toISOString(), list: [[1, 2.5, 0], { b: null }], text: 'é😀\u2028' });
  });
});

describe('a toJSON() decides what is stored, for built-ins and classes alike', () => {
  it('a Buffer is stored as its toJSON() gives it, a URL as its text, a class instance as its fields or its toJSON()', async () => {
    class Money {
      constructor(
        readonly amount: number,
        readonly currency: string,
      ) {}
    }
    class Temperature {
      constructor(private readonly kelvin: number) {}
      toJSON() {
        return { celsius: this.kelvin - 273 };
      }
    }
    const id = await sluice.enqueue(anyJob, {
      bytes: Buffer.from([1, 2]),
      url: new URL('https://example.com/a?b=1'),
      price: new Money(5, 'EUR'),
      temp: new Temperature(300),
    });
    const { rows } = await db.pool.query('SELECT payload FROM sluice.jobs WHERE id = $1', [id]);
    expect(rows[0].payload).toEqual({
      bytes: { type: 'Buffer', data: [1, 2] },
      url: 'https://example.com/a?b=1',
      price: { amount: 5, currency: 'EUR' },
      temp: { celsius: 27 },
    });
  });

  it('an Error whose class defines toJSON() is stored as that gives it', async () => {
    class PublicError extends Error {
      toJSON() {
        return { kind: 'public', message: this.message };
      }
    }
    const id = await sluice.enqueue(anyJob, { err: new PublicError('shown') });
    const { rows } = await db.pool.query('SELECT payload FROM sluice.jobs WHERE id = $1', [id]);
    expect(rows[0].payload).toEqual({ err: { kind: 'public', message: 'shown' } });
  });
});

describe('over HTTP', () => {
  it('a payload with a lone surrogate is a 400 naming the path, and nothing is written', async () => {
    const api = createHttpApi({ sluice, jobs: [anyJob], token: TOKEN });
    const before = await count(db.pool, 'SELECT count(*) n FROM sluice.jobs');
    const res = await api.request('/jobs/bad-json.any', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"payload": {"note": "secret\\ud800"}}',
    });
    expect(res.status).toBe(400);
    // The body is checked whole before the payload is read: the field names the path from the body down.
    const body = (await res.json()) as { error: { code: string; field: string } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.field).toBe('body.payload.note');
    expect(JSON.stringify(body)).not.toContain('secret');
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs')).toBe(before);
  });
});

describe('a handler result JSON cannot carry', () => {
  it('is not stored, a warning names where and why, and the job completes once', async () => {
    const resultJob = defineJob({ name: 'bad-json.result', queue: 'bad-json-result', schema: z.object({ kind: z.string() }) });
    const results: Record<string, () => unknown> = {
      nan: () => ({ total: Number.NaN }),
      fn: () => ({ done: true, callback: () => 1 }),
      circular,
      fine: () => ({ total: 3 }),
    };
    const { logger, lines } = captureLogs('warn');
    const worker = createWorker({
      pool: db.pool,
      logger,
      pollIntervalMs: 50,
      handlers: [resultJob.handle(({ kind }) => results[kind]!())],
    });
    await worker.start();
    try {
      const ids = await sluice.enqueueMany(resultJob, Object.keys(results).map((kind) => ({ kind })));
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = ANY($1::bigint[])`, [ids])) === ids.length, {
        what: 'all four completed',
      });
      const { rows } = await db.pool.query<{ kind: string; state: string; attempt: number; result: unknown }>(
        `SELECT payload->>'kind' AS kind, state, attempt, result FROM sluice.job_history WHERE id = ANY($1::bigint[]) ORDER BY id`,
        [ids],
      );
      expect(rows).toEqual([
        { kind: 'nan', state: 'completed', attempt: 1, result: null },
        { kind: 'fn', state: 'completed', attempt: 1, result: null },
        { kind: 'circular', state: 'completed', attempt: 1, result: null },
        { kind: 'fine', state: 'completed', attempt: 1, result: { total: 3 } },
      ]);
      const warned = lines.filter((l) => l.msg === 'job result cannot be stored as JSON as it is; not stored');
      expect(warned.map((l) => [l.path, String(l.reason).split(',')[0]])).toEqual([
        ['total', 'is NaN or Infinity'],
        ['callback', 'is a function'],
        ['a.list.0', 'is a circular reference'],
      ]);
    } finally {
      await worker.stop();
    }
  });
});

describe('text PostgreSQL cannot store (NUL, lone surrogate) outside the payload', () => {
  const noNul = (field: string) => validation(field, { mentions: [field, 'NUL'], notMentions: ['\u0000', 'secret'] });

  it.each([
    ['options.tags.1', { tags: ['fine', 'secret\u0000tag'] }],
    ['options.tags.0', { tags: ['secret\ud800'] }],
    ['options.uniqueKey', { uniqueKey: 'secret\u0000key' }],
    ['options.uniqueKey', { uniqueKey: 'secret\udfffkey' }],
    ['options.groupKey', { groupKey: 'secret\u0000group' }],
  ])('enqueue refuses %s with a named error', async (field, options) => {
    await expectRejected(() => sluice.enqueue(anyJob, { ok: 1 }, options), noNul(field));
    await expectRejected(() => sluice.flow([{ key: 'a', job: anyJob, payload: {}, options }]), noNul(`steps.0.${field}`));
    if (!('uniqueKey' in options)) await expectRejected(() => sluice.enqueueMany(anyJob, [{ ok: 1 }], options), noNul(field));
  });

  it('enqueueMany refuses a group key function that returns a NUL', async () => {
    await expectRejected(
      () => sluice.enqueueMany(anyJob, [{ n: 1 }, { n: 2 }], { groupKey: (_p, i) => (i === 1 ? 'secret\u0000' : 'g') }),
      noNul('options.groupKey[1]'),
    );
  });

  it('queue settings with a NUL key are refused without quoting it raw', async () => {
    const err = await expectRejected(() => sluice.queues.configure('bad-json', { ['pa\u0000used']: true } as never), validation('settings', { mentions: 'pa\\u0000used' }));
    expect(err.message).not.toContain('\u0000');
  });

  it.each([
    ['schedule.cron', { cron: '* * * * *\u0000' }],
    ['schedule.timezone', { timezone: 'UTC\u0000' }],
    ['schedule.name', { name: 'nightly\u0000' }],
    ['schedule.job', { job: 'bad-json.any\u0000' }],
  ])('a schedule with a NUL in %s is refused', async (field, override) => {
    const err = await expectRejected(
      () => sluice.schedules.add({ name: 'bad-json.nul', cron: '* * * * *', job: 'bad-json.any', ...override }),
      validation(field),
    );
    expect(err.message).not.toContain('\u0000');
  });

  it('a worker service name with a NUL is refused at createWorker', async () => {
    await expectRejected(
      () => createWorker({ pool: db.pool, service: 'svc\u0000', handlers: [anyJob.handle(() => undefined)] }),
      noNul('createWorker.service'),
    );
  });

  it('the CLI refuses a --payload whose JSON escapes a NUL or a lone surrogate: usage error, nothing written', async () => {
    for (const payload of ['{"note": "secret\\u0000"}', '{"note": "secret\\ud800"}']) {
      const errors: string[] = [];
      const before = await count(db.pool, 'SELECT count(*) n FROM sluice.cron_schedules');
      const code = await main(
        ['cron', 'add', 'bad-json.cli', '--cron', '* * * * *', '--job', 'bad-json.any', '--payload', payload, '--database-url', db.url],
        () => {},
        (e) => errors.push(e),
      );
      expect(code).toBe(2);
      expect(errors.join('\n')).toContain('--payload');
      expect(errors.join('\n')).toContain('note');
      expect(errors.join('\n')).not.toContain('secret');
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.cron_schedules')).toBe(before);
    }
    // Arguments given to main() directly (a process's argv cannot hold a NUL).
    const errors: string[] = [];
    const code = await main(['cron', 'add', 'bad-json.cli', '--cron', '* * * * *', '--job', 'bad-json.any', '--timezone', 'UTC\u0000', '--database-url', db.url], () => {}, (e) => errors.push(e));
    expect(code).toBe(2);
    expect(errors.join('\n')).toContain('--timezone');
    expect(errors.join('\n')).not.toContain('\u0000');
  });

  it('the HTTP API answers 400 naming the tag, not 500', async () => {
    const api = createHttpApi({ sluice, jobs: [anyJob], token: TOKEN });
    const res = await api.request('/jobs/bad-json.any', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"payload": {}, "tags": ["ok", "bad\\u0000"]}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { field: string } }).error.field).toBe('body.tags.1');
  });

  it('ctx.progress refuses a message with a NUL; the job still completes', async () => {
    const progressJob = defineJob({ name: 'bad-json.progress', queue: 'bad-json-progress', schema: z.object({}) });
    const worker = createWorker({
      pool: db.pool,
      pollIntervalMs: 50,
      handlers: [
        progressJob.handle(async (_p, ctx) => {
          const err = await ctx.progress(50, 'half\u0000way').then(() => null, (e: unknown) => e);
          return { refused: err instanceof ValidationError && err.field === 'progress.message' };
        }),
      ],
    });
    await worker.start();
    try {
      const id = await sluice.enqueue(progressJob, {});
      expect(await sluice.waitFor(id, { timeoutMs: 20_000 })).toEqual({ refused: true });
    } finally {
      await worker.stop();
    }
  });
});
