// Options that are each valid but cannot work together are refused when the
// worker (or client) is created, with an error naming every field involved.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OptionsConflictError, Sluice, UnpreparedClient, ValidationError, createWorker, defineJob, schedule, type WorkerOptions } from '../packages/sluice/src/index.js';

const job = defineJob({ name: 'oc.job', queue: 'oc', schema: z.object({}) });
const handlers = [job.handle(async () => {})];
// Nothing here connects: the checks run before any query.
const url = 'postgres://postgres@127.0.0.1:5432/postgres';
const onePool = new pg.Pool({ connectionString: url, max: 1 });
const fourPool = new pg.Pool({ connectionString: url, max: 4 });
const unpreparedPool = new pg.Pool({ connectionString: url, max: 4, Client: UnpreparedClient });
afterAll(async () => {
  await Promise.all([onePool.end(), fourPool.end(), unpreparedPool.end()]);
});

function conflict(create: () => unknown): OptionsConflictError {
  try {
    create();
  } catch (err) {
    expect(err).toBeInstanceOf(OptionsConflictError);
    expect(err).toBeInstanceOf(ValidationError);
    return err as OptionsConflictError;
  }
  throw new Error('expected an OptionsConflictError');
}

describe('worker options that cannot work together', () => {
  it.each<[string, Partial<WorkerOptions>, string[]]>([
    ['a heartbeat at half the dead threshold', { heartbeatIntervalMs: 7_500 }, ['createWorker.heartbeatIntervalMs', 'createWorker.workerDeadAfterMs']],
    ['a heartbeat slower than the dead threshold', { heartbeatIntervalMs: 20_000, workerDeadAfterMs: 10_000 }, ['createWorker.heartbeatIntervalMs', 'createWorker.workerDeadAfterMs']],
    ['a heartbeat too slow for a short dead threshold', { heartbeatIntervalMs: 5_000, workerDeadAfterMs: 6_000 }, ['createWorker.heartbeatIntervalMs', 'createWorker.workerDeadAfterMs']],
    ['a one-connection pool that LISTEN would hold', { connectionString: url, poolSize: 1 }, ['poolSize', 'listenConnectionString']],
    ["a caller's one-connection pool that LISTEN would hold", { pool: onePool }, ['pool', 'listenConnectionString']],
    ["a caller's pool and a connection string", { pool: fourPool, connectionString: url }, ['pool', 'connectionString']],
    ["a caller's pool and a pool size", { pool: fourPool, poolSize: 8 }, ['pool', 'poolSize']],
    ["a caller's pool that prepares statements, behind a transaction pooler", { pool: fourPool, poolMode: 'transaction' }, ['pool', 'poolMode']],
  ])('%s', (_what, extra, fields) => {
    const err = conflict(() => createWorker({ connectionString: extra.pool ? undefined : url, handlers, ...extra } as WorkerOptions));
    expect(err.fields).toEqual(fields);
    for (const f of fields) expect(err.message).toContain(f);
  });

  it('the same checks guard the client', () => {
    expect(conflict(() => new Sluice({ connectionString: url, poolSize: 1 })).fields).toEqual(['poolSize', 'listenConnectionString']);
    expect(conflict(() => new Sluice({ pool: fourPool, poolSize: 2 })).fields).toEqual(['pool', 'poolSize']);
  });

  it.each([0, 1.5, -3, 5_000])('a pool size of %s is a ValidationError naming poolSize', (poolSize) => {
    expect(() => createWorker({ connectionString: url, handlers, poolSize })).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'poolSize' }));
  });

  it('combinations that do work are accepted', async () => {
    const ok: Partial<WorkerOptions>[] = [
      {},
      { heartbeatIntervalMs: 7_499 },
      // Without an explicit heartbeat, a short dead threshold brings the default down with it.
      { workerDeadAfterMs: 1_000 },
      { poolSize: 1, listenConnectionString: url },
      { poolSize: 1, poolMode: 'transaction' },
      { pool: onePool, listenConnectionString: url, connectionString: undefined },
      { pool: unpreparedPool, poolMode: 'transaction', connectionString: undefined },
    ];
    for (const extra of ok) {
      const w = createWorker({ connectionString: url, handlers, ...extra } as WorkerOptions);
      await w.stop();
    }
  });
});

describe('worker options of the wrong shape are refused at createWorker, naming the field', () => {
  function refused(options: Partial<WorkerOptions>): ValidationError {
    try {
      createWorker({ connectionString: url, handlers, ...options } as WorkerOptions);
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      return err as ValidationError;
    }
    throw new Error('expected a ValidationError');
  }

  it.each<[string, unknown]>([
    ['an object', {}],
    ['a string', 'oc.topic'],
    ['null', null],
  ])('subscriptions that are %s (not an array), not a TypeError', (_what, subscriptions) => {
    expect(refused({ subscriptions: subscriptions as never }).field).toBe('createWorker.subscriptions');
  });

  it.each<[string, unknown]>([
    ['a string', 'no'],
    ['a number', 0],
    ['null', null],
  ])('runScheduler that is %s, not a boolean: no is not read as true', (_what, runScheduler) => {
    expect(refused({ runScheduler: runScheduler as never }).field).toBe('createWorker.runScheduler');
  });

  // Both would be upserted in one statement, which PostgreSQL refuses (21000) only at start().
  it('two schedules with the same name: the second is refused by name, before anything is written', () => {
    const err = refused({
      schedules: [
        schedule({ name: 'oc-nightly', cron: '0 3 * * *', job }),
        schedule({ name: 'oc-hourly', cron: '0 * * * *', job }),
        schedule({ name: 'oc-nightly', cron: '0 4 * * *', job }),
      ],
    });
    expect(err.field).toBe('createWorker.schedules.2.name');
    expect(err.message).toContain('"oc-nightly"');
    expect(err.message).toContain('schedules.0');
  });
});
