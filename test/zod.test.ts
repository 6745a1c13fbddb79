// Which zod sluice works with: zod 4 (classic or mini) schemas validate
// payloads and results; a zod 3 schema is refused at defineJob by name,
// saying which zod sluice needs.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as zm from 'zod/mini';
import { z as z3 } from 'zod3';
import {
  PayloadValidationError,
  UnsupportedSchemaError,
  ValidationError,
  defineJob,
  type AnyJob,
} from '../packages/sluice/src/index.js';
import { waitUntil } from './helpers/db.js';
import { useSuite } from './helpers/suite.js';

const suite = useSuite({ pollIntervalMs: 100, runScheduler: false });

describe('zod 3 schemas', () => {
  it('are refused at defineJob with UnsupportedSchemaError naming zod 4', () => {
    let caught: unknown;
    try {
      // The compiler refuses it as well (see typed-api.test-d.ts); plain JavaScript reaches this check.
      defineJob({ name: 'zod.three', schema: z3.object({ to: z3.string() }) as never });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsupportedSchemaError);
    expect(caught).toBeInstanceOf(ValidationError);
    const err = caught as UnsupportedSchemaError;
    expect(err.name).toBe('UnsupportedSchemaError');
    expect(err.field).toBe('schema');
    expect(err.message).toContain('zod 3');
    expect(err.message).toContain('zod@^4');
  });

  it('are refused as a result schema too', () => {
    expect(() => defineJob({ name: 'zod.three.result', schema: z.object({}), result: z3.string() as never })).toThrow(
      expect.objectContaining({ name: 'UnsupportedSchemaError', field: 'result' }),
    );
  });

  it('something that is no schema at all says so', () => {
    expect(() => defineJob({ name: 'zod.none', schema: { parse: () => 1 } as never })).toThrow(/has no zod schema; sluice needs a zod 4 schema/);
  });
});

describe('zod 4 schemas', () => {
  it('classic and mini schemas validate payloads at enqueue', async () => {
    const classic = defineJob({ name: 'zod.classic', queue: 'zod', schema: z.object({ n: z.number() }) });
    const mini = defineJob({ name: 'zod.mini', queue: 'zod', schema: zm.object({ n: zm.number() }) });
    for (const job of [classic, mini]) {
      const id = await suite.sluice.enqueue(job, { n: 1 });
      expect((await suite.sluice.getJob(id)).payload).toEqual({ n: 1 });
      await expect(suite.sluice.enqueue(job as AnyJob, { n: 'one' })).rejects.toBeInstanceOf(PayloadValidationError);
    }
  });

  it("a result schema's output is what waitFor returns; a result that fails it dead-letters the job with ResultValidationError", async () => {
    const job = defineJob({
      name: 'zod.result',
      queue: 'zod.result',
      schema: z.object({ n: z.number(), bad: z.boolean() }),
      result: z.object({ doubled: z.number() }),
    });
    await suite
      .startWorker({ handlers: [job.handle(async (p) => (p.bad ? ({ doubled: 'no' } as never) : { doubled: p.n * 2, extra: 'dropped' }))] })
      .start();
    const good = await suite.sluice.enqueue(job, { n: 21, bad: false });
    expect(await suite.sluice.waitFor(good)).toEqual({ doubled: 42 });

    const bad = await suite.sluice.enqueue(job, { n: 1, bad: true });
    const dead = await waitUntil(async () => {
      const j = await suite.sluice.getJob(bad);
      return j.state === 'dead' ? j : null;
    }, { what: 'the job with a bad result to die' });
    expect(dead.attempt).toBe(1);
    expect(dead.errors.at(-1)).toMatchObject({ name: 'ResultValidationError', message: expect.stringContaining('doubled') });
    expect(dead.errors.at(-1)!.message).not.toContain('"no"');
  });

  it("a record's keys, which are data, show as * in the error's paths and message", async () => {
    const scores = defineJob({ name: 'zod.scores', queue: 'zod', schema: z.object({ scores: z.record(z.string(), z.number()) }) });
    const err = await suite.sluice.enqueue(scores, { scores: { 'alice@example.com': 'high' as never } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadValidationError);
    expect((err as PayloadValidationError).issues.map((i) => i.path)).toEqual(['scores.*']);
    expect((err as Error).message).not.toContain('alice');
    // zod names unrecognized keys in its message: a key that is data shows as * there too.
    const strict = defineJob({ name: 'zod.strict', queue: 'zod', schema: z.strictObject({ a: z.number() }) });
    const unknown = await suite.sluice.enqueue(strict, { a: 1, 'bob@example.com': 1 } as never).catch((e: unknown) => e);
    expect((unknown as PayloadValidationError).issues).toEqual([{ path: '', message: 'Unrecognized key: *' }]);
    expect((unknown as Error).message).not.toContain('bob');
  });

  it('a schema whose output, stored as JSON, does not pass it again is refused at enqueue, nothing written; one whose output does is not', async () => {
    const count = async (queue: string) => Number((await suite.db.pool.query(`SELECT count(*) n FROM sluice.jobs WHERE queue = $1`, [queue])).rows[0].n);
    // A transform that changes the type, and a Date (stored as text): the worker would refuse the stored payload, every time.
    const changed = defineJob({ name: 'zod.changed', queue: 'zod.stored', schema: z.object({ amount: z.string().transform(Number) }) });
    const dated = defineJob({ name: 'zod.dated', queue: 'zod.stored', schema: z.object({ at: z.date() }) });
    for (const [job, payload, path] of [
      [changed, { amount: '42' }, 'amount'],
      [dated, { at: new Date(0) }, 'at'],
    ] as const) {
      const err = await suite.sluice.enqueueMany(job as AnyJob, [payload, payload]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PayloadValidationError);
      expect((err as PayloadValidationError).issues).toEqual([{ path, message: expect.stringContaining('in the payload as stored') }]);
    }
    // A field only some payloads carry: the first passes as stored, the second would not.
    const sometimes = defineJob({ name: 'zod.sometimes', queue: 'zod.stored', schema: z.object({ n: z.number(), at: z.date().optional() }) });
    const err = await suite.sluice.enqueueMany(sometimes, [{ n: 1 }, { n: 2, at: new Date(0) }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadValidationError);
    expect((err as PayloadValidationError).issues).toEqual([{ path: 'at', message: expect.stringContaining('in the payload as stored') }]);
    expect(await count('zod.stored')).toBe(0);
    // A transform whose output passes again (and a date coerced from its text) goes in.
    const trimmed = defineJob({ name: 'zod.trimmed', queue: 'zod.stored', schema: z.object({ name: z.string().trim(), at: z.coerce.date() }) });
    const id = await suite.sluice.enqueue(trimmed, { name: '  ada ', at: new Date(0) });
    expect((await suite.sluice.getJob(id)).payload).toEqual({ name: 'ada', at: '1970-01-01T00:00:00.000Z' });
  });
});
