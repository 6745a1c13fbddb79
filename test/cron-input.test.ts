// Bad input to schedules.add gets a named error and writes nothing, so no
// schedule is stored that could never fire; and runNow reports the
// database's refusals as sluice's named errors.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OptionsConflictError, PayloadTooLargeError, Sluice, ValidationError, createWorker, defineJob, schedule } from '../packages/sluice/src/index.js';
import { count } from './helpers/db.js';
import { rejections, validation } from './helpers/rejects.js';
import { useSuite } from './helpers/suite.js';

const s = useSuite();
const { expectRejected } = rejections(() => s.db.pool);

afterEach(async () => {
  await s.db.pool.query('DELETE FROM sluice.cron_schedules; DELETE FROM sluice.jobs; DELETE FROM sluice.job_history');
});

const LIMIT = 1_048_576;
const anything = defineJob({ name: 'ci.any', queue: 'ci.any', schema: z.unknown() });
const named = defineJob({ name: 'ci.named', queue: 'ci.named', schema: z.unknown() });
const registered = async () => new Sluice({ pool: s.db.pool, jobs: [named] }).registerJobs();

const goodJobOptions = {
  queue: 'ci.elsewhere',
  priority: 5,
  maxAttempts: 3,
  timeoutMs: null,
  backoff: { kind: 'fixed', baseMs: 1_000, factor: 1, maxMs: 1_000, jitter: 0 },
};
const byName = (jobOptions: unknown, payload: unknown = {}) =>
  ({ name: 'ci-by-name', cron: '0 3 * * *', timezone: 'UTC', jobName: 'ci.named', payload, misfire: 'run_once', runAllCap: 100, jobOptions }) as never;

describe('schedules.add: what is not a schedule', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'x'],
    ['a number', 42],
    ['a boolean', true],
  ])('%s is a ValidationError naming the schedule, and nothing is written', async (_what, bad) => {
    await expectRejected(() => s.sluice.schedules.add(bad as never), validation('schedule'));
  });
});

describe('schedules.add by job name: jobOptions are checked as defineJob checks them', () => {
  it.each([
    ['a queue that is not a name', { queue: 'bad queue!' }, 'schedule.jobOptions.queue'],
    ['a priority beyond smallint', { priority: 1e9 }, 'schedule.jobOptions.priority'],
    ['an unknown priority name', { priority: 'urgent' }, 'schedule.jobOptions.priority'],
    ['a negative maxAttempts', { maxAttempts: -5 }, 'schedule.jobOptions.maxAttempts'],
    ['maxAttempts over 1000', { maxAttempts: 1001 }, 'schedule.jobOptions.maxAttempts'],
    ['a timeoutMs that is text', { timeoutMs: 'x' }, 'schedule.jobOptions.timeoutMs'],
    ['a timeoutMs of 0', { timeoutMs: 0 }, 'schedule.jobOptions.timeoutMs'],
    ['an unknown backoff kind', { backoff: { ...goodJobOptions.backoff, kind: 'weird' } }, 'schedule.jobOptions.backoff.kind'],
    ['a backoff jitter over 1', { backoff: { ...goodJobOptions.backoff, jitter: 2 } }, 'schedule.jobOptions.backoff.jitter'],
    ['a backoff missing its factor', { backoff: { kind: 'fixed', baseMs: 1_000, maxMs: 1_000, jitter: 0 } }, 'schedule.jobOptions.backoff.factor'],
    ['a missing queue', { queue: undefined }, 'schedule.jobOptions.queue'],
    ['an unknown option', { colour: 'red' }, 'schedule.jobOptions'],
  ])('%s is a ValidationError naming it, and nothing is written', async (_what, bad, field) => {
    await registered();
    await expectRejected(() => s.sluice.schedules.add(byName({ ...goodJobOptions, ...bad })), validation(field));
  });

  it.each([
    ['text', 'fast'],
    ['an array', []],
  ])('jobOptions that are %s are a ValidationError, and nothing is written', async (_what, bad) => {
    await registered();
    await expectRejected(() => s.sluice.schedules.add(byName(bad)), validation('schedule.jobOptions'));
  });

  it('a definition naming both a job and a jobName is an OptionsConflictError, and nothing is written', async () => {
    await registered();
    const both = { ...(byName(goodJobOptions) as object), job: anything } as never;
    const err = await expectRejected(() => s.sluice.schedules.add(both), {
      cls: OptionsConflictError,
      name: 'OptionsConflictError',
      mentions: ['schedule.job', 'schedule.jobName'],
    });
    expect((err as OptionsConflictError).fields).toEqual(['schedule.job', 'schedule.jobName']);
  });

  it('a named priority is stored as its number and fires with it; a definition from schedule() is taken as it is', async () => {
    await registered();
    await s.sluice.schedules.add(byName({ ...goodJobOptions, priority: 'high' }));
    expect((await s.sluice.schedules.get('ci-by-name')).jobOptions).toEqual({ ...goodJobOptions, priority: 10 });
    const id = await s.sluice.schedules.runNow('ci-by-name');
    const { rows } = await s.db.pool.query(`SELECT queue, priority, max_attempts, backoff_kind FROM sluice.jobs WHERE id = $1`, [id]);
    expect(rows).toEqual([{ queue: 'ci.elsewhere', priority: 10, max_attempts: 3, backoff_kind: 'fixed' }]);
    // What schedule() returns for a job definition is a definition add() takes back.
    const fromDefinition = await s.sluice.schedules.add(schedule({ name: 'ci-def', cron: '0 3 * * *', job: anything }));
    expect((await s.sluice.schedules.get('ci-def')).jobOptions).toEqual(fromDefinition.jobOptions);
  });
});

describe('schedules.add: a payload its fires could not enqueue', () => {
  const tooLarge = (sizeBytes: number, jobName = 'ci.any') => ({
    cls: PayloadTooLargeError,
    name: 'PayloadTooLargeError',
    mentions: ['payload', jobName, String(sizeBytes), String(LIMIT)],
    notMentions: ['xxxx'],
  });

  it('over 1 MiB is a PayloadTooLargeError naming the job and the sizes, without the contents; nothing is written', async () => {
    const payload = { s: 'x'.repeat(2_000_000) };
    const err = await expectRejected(() => s.sluice.schedules.add({ name: 'ci-big', cron: '* * * * *', job: anything, payload }), tooLarge(2_000_008));
    expect(err).toMatchObject({ jobName: 'ci.any', sizeBytes: 2_000_008, limitBytes: LIMIT });
    await registered();
    await expectRejected(() => s.sluice.schedules.add(byName(null, payload)), tooLarge(2_000_008, 'ci.named'));
  });

  it('is measured as the database stores it, which is what each fire is checked against', async () => {
    // jsonb writes {"s": "…"}, one byte more than JSON.stringify's {"s":"…"}:
    // 1 MiB of JSON text is 1 MiB + 1 once stored.
    await expectRejected(
      () => s.sluice.schedules.add({ name: 'ci-edge', cron: '* * * * *', job: anything, payload: { s: 'x'.repeat(LIMIT - 8) } }),
      tooLarge(LIMIT + 1),
    );
    // A number JSON writes short, jsonb writes out in full: 1e+300 (6 bytes) is 301
    // digits, so 24 KB of JSON is [1000…, 1000…, …], 2 + 4000 × 301 + 3999 × 2 bytes.
    await expectRejected(
      () => s.sluice.schedules.add({ name: 'ci-numbers', cron: '* * * * *', job: anything, payload: new Array(4_000).fill(1e300) }),
      tooLarge(1_212_000),
    );
    // One byte less is stored, and fires.
    await s.sluice.schedules.add({ name: 'ci-edge', cron: '* * * * *', job: anything, payload: { s: 'x'.repeat(LIMIT - 9) } });
    const id = await s.sluice.schedules.runNow('ci-edge');
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1`, [id])).toBe(1);
  });
});

describe('schedules.runNow', () => {
  it("reports the database's refusal as a named error without the payload, and enqueues nothing", async () => {
    await registered();
    // Written by plain SQL, which add() does not stand in front of.
    await s.db.pool.query(
      `INSERT INTO sluice.cron_schedules (name, cron, job_name, payload) VALUES ('ci-sql-big', '0 3 * * *', 'ci.named', jsonb_build_object('s', repeat('x', 1100000)))`,
    );
    const err = await expectRejected(() => s.sluice.schedules.runNow('ci-sql-big'), {
      cls: ValidationError,
      name: 'ValidationError',
      mentions: `larger than ${LIMIT} bytes`,
      notMentions: ['xxxx'],
      field: 'sql',
    });
    expect((err.cause as { code?: string }).code).toBe('54000');
  });
});

describe('createWorker: schedules written by hand are held to the same rules', () => {
  it('a bad jobOptions field is a ValidationError naming the schedule and the field; a definition from schedule() passes', () => {
    const worker = (schedules: unknown[]) => createWorker({ connectionString: s.db.url, handlers: [named.handle(() => {})], schedules: schedules as never });
    expect(() => worker([byName({ ...goodJobOptions, maxAttempts: -5 })])).toThrow(
      expect.objectContaining({ name: 'ValidationError', field: 'createWorker.schedules.0.jobOptions.maxAttempts' }),
    );
    expect(() => worker([schedule({ name: 'ci-ok', cron: '0 3 * * *', job: named, payload: {} })])).not.toThrow();
  });
});

describe('schedules.enable', () => {
  it('a row whose expression cannot be read (written by SQL) is a ValidationError, and stays disabled', async () => {
    await registered();
    await s.sluice.schedules.add({ name: 'ci-unreadable', cron: '0 3 * * *', jobName: 'ci.named', payload: {} } as never);
    await s.db.pool.query(`UPDATE sluice.cron_schedules SET cron = 'not a cron', enabled = false WHERE name = 'ci-unreadable'`);
    await expectRejected(() => s.sluice.schedules.enable('ci-unreadable'), validation('name', { mentions: 'ci-unreadable' }));
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.cron_schedules WHERE name = 'ci-unreadable' AND NOT enabled`)).toBe(1);
  });
});
