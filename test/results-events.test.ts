// Issue 6, points 10-12: progress (visible, throttled, fenced), results
// (stored, size-limited), waitFor (NOTIFY; result or JobFailedError,
// CancelledError, WaitTimeoutError), middleware (order, wrapping, context)
// and pub/sub fan-out committed with the caller's transaction.
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CancelledError,
  JobFailedError,
  JobNotFoundError,
  LeaseLostError,
  Sluice,
  ValidationError,
  WaitTimeoutError,
  WorkerStateError,
  createWorker,
  defineJob,
  type Middleware,
  type Worker,
} from '../packages/sluice/src/index.js';
import { count, waitUntil, type TestDb } from './helpers/db.js';
import { useSuite } from './helpers/suite.js';

const suite = useSuite({ pollIntervalMs: 100, runScheduler: false });
let db: TestDb;
let sluice: Sluice;
beforeAll(() => {
  ({ db, sluice } = suite);
});
const worker = suite.startWorker;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((r) => (signal.aborted ? r(signal.reason) : signal.addEventListener('abort', () => r(signal.reason), { once: true })));

describe('progress', () => {
  it('is visible while the job runs; quick reports are throttled to few writes and the latest lands; bad values are refused', async () => {
    // Counts every progress write to sluice.jobs, with the database clock.
    await db.pool.query(`CREATE TABLE progress_writes (job_id bigint, pct int, at timestamptz DEFAULT clock_timestamp())`);
    await db.pool.query(`CREATE FUNCTION record_progress_write() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO progress_writes (job_id, pct) VALUES (NEW.id, NEW.progress); RETURN NEW; END $$`);
    await db.pool.query(`CREATE TRIGGER progress_writes AFTER UPDATE OF progress, progress_message ON sluice.jobs
      FOR EACH ROW EXECUTE FUNCTION record_progress_write()`);
    const job = defineJob({ name: 're.progress', queue: 're.p', schema: z.object({}) });
    const first = gate();
    const second = gate();
    const refused: unknown[] = [];
    await worker({
      handlers: [
        job.handle(async (_p, ctx) => {
          await ctx.progress(40, 'halfway');
          await first.wait;
          const reports: Promise<void>[] = [];
          for (let pct = 41; pct <= 59; pct++) reports.push(ctx.progress(pct));
          reports.push(ctx.progress(60.4, 'almost'));
          await Promise.all(reports);
          refused.push(await ctx.progress(101).catch((e: unknown) => e));
          refused.push(await ctx.progress(Number.NaN).catch((e: unknown) => e));
          refused.push(await ctx.progress(50, 42 as never).catch((e: unknown) => e));
          await second.wait;
          return 'done';
        }),
      ],
    }).start();
    const id = await sluice.enqueue(job, {});
    const running = await waitUntil(async () => {
      const j = await sluice.getJob(id);
      return j.state === 'running' && j.progress === 40 ? j : null;
    }, { what: 'progress 40 while running' });
    expect(running.progressMessage).toBe('halfway');

    first.open();
    await waitUntil(async () => {
      const j = await sluice.getJob(id);
      return j.progress === 60 && j.progressMessage === 'almost';
    }, { what: 'latest progress written' });
    expect(refused.map((e) => (e as ValidationError).field)).toEqual(['progress.pct', 'progress.pct', 'progress.message']);
    for (const e of refused) expect(e).toBeInstanceOf(ValidationError);
    // The refused reports changed nothing.
    expect((await sluice.getJob(id)).progress).toBe(60);
    // 21 reports, 2 writes: 40 at once, then only the latest of the burst,
    // at least the throttle interval (250 ms) later.
    const { rows: writes } = await db.pool.query<{ pct: number; at: Date }>(`SELECT pct, at FROM progress_writes WHERE job_id = $1 ORDER BY at`, [id]);
    expect(writes.map((w) => w.pct)).toEqual([40, 60]);
    expect(writes[1]!.at.getTime() - writes[0]!.at.getTime()).toBeGreaterThanOrEqual(200);
    second.open();
    expect(await sluice.waitFor(id, { timeoutMs: 10_000 })).toBe('done');
  });

  it('is fenced: after the job was rescued away from this attempt, a report is refused and the signal fires with LeaseLostError', async () => {
    const job = defineJob({ name: 're.fence', queue: 're.fence', schema: z.object({}), maxAttempts: 3 });
    const proceed = gate();
    let reason: unknown = null;
    await worker({
      handlers: [
        job.handle(async (_p, ctx) => {
          if (ctx.job.attempt > 1) return `attempt ${ctx.job.attempt}`;
          await ctx.progress(10, 'first');
          await proceed.wait;
          await ctx.progress(20, 'late');
          reason = ctx.signal.reason;
          return 'stale answer';
        }),
      ],
      abortGraceMs: 5_000,
    }).start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(async () => (await sluice.getJob(id)).progress === 10, { what: 'first progress' });

    // The lease lapses and the rescuer hands the job back (no reclaim yet: the queue is paused).
    await sluice.queues.pause('re.fence');
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE sluice.jobs SET locked_until = now() - interval '1 second' WHERE id = $1`, [id]);
      const { rows } = await client.query(`SELECT id, outcome FROM sluice.rescue_expired()`);
      await client.query('COMMIT');
      expect(rows).toEqual([{ id: String(id), outcome: 'rescued' }]);
    } finally {
      client.release();
    }

    proceed.open();
    await waitUntil(() => reason !== null, { what: 'signal fired' });
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as LeaseLostError).jobId).toBe(id);
    const after = await sluice.getJob(id);
    expect(after.state).toBe('available');
    expect(after.progress).toBe(10);
    expect(after.progressMessage).toBe('first');

    // The stale attempt's answer was refused; the job runs again and completes.
    await sluice.queues.resume('re.fence');
    expect(await sluice.waitFor(id, { timeoutMs: 10_000 })).toBe('attempt 2');
  });

  it('a running job that is cancelled gets CancelledError on its signal; its later reports write nothing', async () => {
    const job = defineJob({ name: 're.cancel', queue: 're.cancel', schema: z.object({}) });
    let reason: unknown = null;
    let lateReport: unknown = 'not called';
    await worker({
      handlers: [
        job.handle(async (_p, ctx) => {
          await ctx.progress(5, 'started');
          reason = await aborted(ctx.signal);
          lateReport = await ctx.progress(90, 'after cancel').then(() => 'resolved', (e: unknown) => e);
        }),
      ],
    }).start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(async () => (await sluice.getJob(id)).progress === 5, { what: 'progress 5' });
    const waited = sluice.waitFor(id, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(await sluice.cancel(id)).toBe('running');
    await waitUntil(() => lateReport !== 'not called', { what: 'handler wound down' });
    expect(reason).toBeInstanceOf(CancelledError);
    expect((reason as CancelledError).jobId).toBe(id);
    expect(lateReport).toBe('resolved');
    expect((await sluice.getJob(id)).state).toBe('cancelled');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1`, [id])).toBe(0);
    const err = await waited;
    expect(err).toBeInstanceOf(CancelledError);
  });
});

describe('results and waitFor', () => {
  const calc = defineJob({ name: 're.calc', queue: 're.r', schema: z.object({ a: z.number(), b: z.number() }) });
  const big = defineJob({ name: 're.big', queue: 're.r', schema: z.object({ size: z.number() }) });
  const none = defineJob({ name: 're.none', queue: 're.r', schema: z.object({}) });
  const boom = defineJob({ name: 're.boom', queue: 're.r', schema: z.object({ secret: z.string() }), maxAttempts: 1 });
  const idle = defineJob({ name: 're.idle', queue: 're.idle', schema: z.object({}) });
  const bySql = defineJob({ name: 're.sql', queue: 're.sql', schema: z.object({}) });
  const MAX_RESULT_BYTES = 100;

  // One worker serves this block, started by the first test that needs it
  // (and stopped by afterEach, so each of those tests starts it again).
  let started: Promise<void> | null = null;
  let startedBy: Worker | null = null;
  const startResultWorker = (): Promise<void> => {
    if (started && startedBy && suite.workers.includes(startedBy)) return started;
    startedBy = worker({
      handlers: [
        calc.handle(async (p) => ({ sum: p.a + p.b })),
        big.handle(async (p) => ({ blob: 'x'.repeat(p.size) })),
        none.handle(async () => undefined),
        boom.handle(async () => {
          throw new Error('kaput');
        }),
      ],
      maxResultBytes: MAX_RESULT_BYTES,
    });
    started = startedBy.start();
    return started;
  };

  it('waitFor resolves with the stored result; getJob and SQL show it', async () => {
    await startResultWorker();
    const id = await sluice.enqueue(calc, { a: 2, b: 3 });
    expect(await sluice.waitFor(id, { timeoutMs: 10_000 })).toEqual({ sum: 5 });
    expect((await sluice.getJob(id)).result).toEqual({ sum: 5 });
    const { rows } = await db.pool.query(`SELECT result FROM sluice.job_history WHERE id = $1`, [id]);
    expect(rows[0].result).toEqual({ sum: 5 });
    // A finished job resolves at once.
    expect(await sluice.waitFor(id, { timeoutMs: 1_000 })).toEqual({ sum: 5 });
  });

  it(`a result over maxResultBytes (${MAX_RESULT_BYTES}) is not stored, the job still completes; no return value stores null`, async () => {
    await startResultWorker();
    const [small, large] = await sluice.enqueueMany(big, [{ size: 50 }, { size: 200 }]);
    const nothing = await sluice.enqueue(none, {});
    expect(await sluice.waitFor(small!, { timeoutMs: 10_000 })).toEqual({ blob: 'x'.repeat(50) });
    expect(await sluice.waitFor(large!, { timeoutMs: 10_000 })).toBeNull();
    expect(await sluice.waitFor(nothing, { timeoutMs: 10_000 })).toBeNull();
    const j = await sluice.getJob(large!);
    expect(j.state).toBe('completed');
    expect(j.result).toBeNull();
    const { rows } = await db.pool.query(`SELECT result FROM sluice.job_history WHERE id = $1`, [large]);
    expect(rows[0].result).toBeNull();
  });

  it('waitFor rejects with JobFailedError (cause: the last error, no payload) for a dead job', async () => {
    await startResultWorker();
    const id = await sluice.enqueue(boom, { secret: 'hunter2-secret' });
    const err = await sluice.waitFor(id, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).jobId).toBe(id);
    expect((err as JobFailedError).state).toBe('dead');
    expect(((err as Error).cause as Error).message).toBe('kaput');
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('waitFor rejects with CancelledError when the job is cancelled, WaitTimeoutError when it does not finish in time', async () => {
    const a = await sluice.enqueue(idle, {});
    const waitedA = sluice.waitFor(a, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    await sleep(100);
    await sluice.cancel(a);
    const errA = await waitedA;
    expect(errA).toBeInstanceOf(CancelledError);
    expect((errA as CancelledError).jobId).toBe(a);

    const b = await sluice.enqueue(idle, {});
    const errB = await sluice.waitFor(b, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(errB).toBeInstanceOf(WaitTimeoutError);
    expect(errB).toMatchObject({ jobId: b, timeoutMs: 300 });
    expect((await sluice.getJob(b)).state).toBe('available');

    await expect(sluice.waitFor(987_654_321, { timeoutMs: 1_000 })).rejects.toBeInstanceOf(JobNotFoundError);
  });

  it('waitFor is told by NOTIFY on sluice_finished, also when the job is finished from SQL', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const notices: string[] = [];
    listener.on('notification', (n) => notices.push(`${n.channel}:${n.payload}`));
    await listener.query('LISTEN sluice_finished');
    try {
      const id = await sluice.enqueue(bySql, {});
      const waited = sluice.waitFor(id, { timeoutMs: 10_000 });
      await waitUntil(async () => (await db.pool.query(`SELECT notify_on_finish FROM sluice.jobs WHERE id = $1`, [id])).rows[0]?.notify_on_finish, {
        what: 'finish notice requested',
      });
      // A claim and completion by hand, as another language's worker would.
      const claimed = await db.pool.query(`SELECT id, attempt FROM sluice.claim(ARRAY['re.sql'], ARRAY[1], 'by-hand', 60000)`);
      expect(claimed.rows).toEqual([{ id: String(id), attempt: 1 }]);
      await db.pool.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"from":"sql"}'::jsonb])`, [id]);
      expect(await waited).toEqual({ from: 'sql' });
      await waitUntil(() => notices.includes(`sluice_finished:${id}`), { what: 'notification seen' });
    } finally {
      await listener.end();
    }
  });

  it('waitFor resolves when the job completes in a queue that keeps no history', async () => {
    const fast = defineJob({ name: 're.nohist', queue: 're.nohist', schema: z.object({}) });
    await sluice.queues.configure('re.nohist', { keepHistory: false });
    await worker({ handlers: [fast.handle(async () => ({ ok: 1 }))] }).start();
    const id = await sluice.enqueue(fast, {});
    const outcome = await sluice.waitFor(id, { timeoutMs: 10_000 }).then(
      (value) => ({ resolved: true, value }),
      (err: unknown) => ({ resolved: false, err: (err as Error).name }),
    );
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1`, [id])).toBe(0);
    // The job completed: its waiter must not be told it never existed.
    expect(outcome, JSON.stringify(outcome)).toMatchObject({ resolved: true });
  });

  it('waitFor called after its job already completed in a queue that keeps no history resolves; an id never enqueued is not found', async () => {
    const gone = defineJob({ name: 're.gone', queue: 're.gone', schema: z.object({}) });
    await sluice.queues.configure('re.gone', { keepHistory: false });
    await worker({ handlers: [gone.handle(async () => ({ ok: 1 }))] }).start();
    const id = await sluice.enqueue(gone, {});
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1`, [id])) === 0, { what: 'job completed and gone' });
    // Nothing is left of the job anywhere: only this client knows it existed.
    await expect(sluice.waitFor(id, { timeoutMs: 5_000 })).resolves.toBeNull();
    await expect(sluice.waitFor(id + 1_000_000, { timeoutMs: 5_000 })).rejects.toMatchObject({ name: 'JobNotFoundError' });
  });

  it('waitFor on a job whose enqueue was rolled back with its transaction is not found; one whose transaction committed and that left no row completed', async () => {
    const undone = defineJob({ name: 're.undone', queue: 're.undone', schema: z.object({}) });
    await sluice.queues.configure('re.undone', { keepHistory: false });
    // An enqueue in the caller's transaction, which then ends as `end` says.
    const enqueueIn = async (end: 'COMMIT' | 'ROLLBACK') => {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        const id = await sluice.enqueue(undone, {}, { tx: client });
        await client.query(end);
        return id;
      } finally {
        client.release();
      }
    };
    const id = await enqueueIn('ROLLBACK');
    await expect(sluice.waitFor(id, { timeoutMs: 5_000 })).rejects.toMatchObject({ name: 'JobNotFoundError' });
    // Committed in the caller's transaction, then gone (completed without history) before waitFor asked: completed.
    const kept = await enqueueIn('COMMIT');
    await db.pool.query(`DELETE FROM sluice.jobs WHERE id = $1`, [kept]);
    await expect(sluice.waitFor(kept, { timeoutMs: 5_000 })).resolves.toBeNull();
    // The same enqueue committed by sluice itself is known to this client.
    const done = await sluice.enqueue(undone, {});
    await db.pool.query(`DELETE FROM sluice.jobs WHERE id = $1`, [done]);
    await expect(sluice.waitFor(done, { timeoutMs: 5_000 })).resolves.toBeNull();
  });

  it('many waiters at once all resolve', async () => {
    await startResultWorker();
    const ids = await sluice.enqueueMany(calc, Array.from({ length: 50 }, (_, i) => ({ a: i, b: 1 })));
    const results = await Promise.all(ids.map((id) => sluice.waitFor(id, { timeoutMs: 15_000 })));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => ({ sum: i + 1 })));
  });

  it('waitFor resolves while its LISTEN session cannot connect: it reads the job on an interval meanwhile', async () => {
    await startResultWorker();
    // Port 1: nothing listens there, so the session keeps reconnecting.
    const client = new Sluice({ connectionString: db.url, listenConnectionString: 'postgres://postgres@127.0.0.1:1/postgres' });
    try {
      // Delayed, so it is still waiting when waitFor first reads it.
      const id = await client.enqueue(calc, { a: 2, b: 5 }, { delayMs: 500 });
      expect(await client.waitFor(id, { timeoutMs: 5_000 })).toEqual({ sum: 7 });
    } finally {
      await client.close();
    }
  });

  it.each([
    ['options.timeoutMs', 1, { timeoutMs: 0 }],
    ['options.timeoutMs', 1, { timeoutMs: 1.5 }],
    ['options.timeoutMs', 1, { timeoutMs: -10 }],
    ['id', 0, {}],
    ['id', 1.5, {}],
    ['id', '1', {}],
  ])('waitFor refuses %s (%j, %j)', async (field, id, options) => {
    const err = await sluice.waitFor(id as number, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });

  it.each([[-1], [1.5], [200 * 1024 * 1024], ['100']])('createWorker refuses maxResultBytes %j', (value) => {
    expect(() => createWorker({ connectionString: db.url, handlers: [calc.handle(() => 1)], maxResultBytes: value as never })).toThrow(
      expect.objectContaining({ name: 'ValidationError', field: 'createWorker.maxResultBytes' }),
    );
  });
});

describe('middleware', () => {
  const mwJob = defineJob({ name: 're.mw', queue: 're.mw', schema: z.object({ tenant: z.string(), mode: z.string().default('ok') }), maxAttempts: 1 });
  const mwOther = defineJob({ name: 're.mw2', queue: 're.mw', schema: z.object({ tenant: z.string() }) });

  it('runs the options middleware, then use() middleware, in order around every handler; can wrap the result and set context', async () => {
    const log: string[] = [];
    const seen: unknown[] = [];
    const tenantStore = new AsyncLocalStorage<{ tenant: string }>();
    const step = (name: string): Middleware => async (_ctx, next) => {
      log.push(`${name}>`);
      const r = await next();
      log.push(`<${name}`);
      return r;
    };
    const wrap: Middleware = async (ctx, next) => {
      log.push('wrap>');
      const r = await next();
      log.push('<wrap');
      return { wrapped: r, by: ctx.job.name };
    };
    const inspect: Middleware = async (ctx, next) => {
      seen.push({ payload: ctx.payload, job: { id: ctx.job.id, name: ctx.job.name, queue: ctx.job.queue, attempt: ctx.job.attempt, maxAttempts: ctx.job.maxAttempts } });
      expect(ctx.signal).toBeInstanceOf(AbortSignal);
      expect(typeof ctx.progress).toBe('function');
      return next();
    };
    const tenantContext: Middleware = (ctx, next) => tenantStore.run({ tenant: (ctx.payload as { tenant: string }).tenant }, next);
    const w = worker({
      middleware: [wrap, step('m2')],
      handlers: [
        mwJob.handle(async () => {
          log.push('handler');
          return { tenant: tenantStore.getStore()?.tenant };
        }),
        mwOther.handle(async () => {
          log.push('handler2');
          return 'other';
        }),
      ],
      concurrency: 1,
    });
    w.use(inspect).use(tenantContext).use(step('m5'));
    await w.start();

    const id = await sluice.enqueue(mwJob, { tenant: 'acme' });
    expect(await sluice.waitFor(id, { timeoutMs: 10_000 })).toEqual({ wrapped: { tenant: 'acme' }, by: 're.mw' });
    expect(log).toEqual(['wrap>', 'm2>', 'm5>', 'handler', '<m5', '<m2', '<wrap']);
    expect(seen).toEqual([{ payload: { tenant: 'acme', mode: 'ok' }, job: { id, name: 're.mw', queue: 're.mw', attempt: 1, maxAttempts: 1 } }]);

    log.length = 0;
    const other = await sluice.enqueue(mwOther, { tenant: 'globex' });
    expect(await sluice.waitFor(other, { timeoutMs: 10_000 })).toEqual({ wrapped: 'other', by: 're.mw2' });
    expect(log).toEqual(['wrap>', 'm2>', 'm5>', 'handler2', '<m5', '<m2', '<wrap']);
  });

  it('a middleware may replace ctx.logger and ctx.signal, and the handler gets what it set', async () => {
    const mwSwap = defineJob({ name: 're.mw3', queue: 're.mw3', schema: z.object({}), maxAttempts: 1 });
    const replaced = new AbortController();
    const w = worker({
      queues: ['re.mw3'],
      middleware: [
        async (ctx, next) => {
          ctx.logger = ctx.logger.child({ traceId: 'trace-1' });
          ctx.signal = replaced.signal;
          return next();
        },
      ],
      handlers: [
        mwSwap.handle(async (_, ctx) => ({
          traceId: (ctx.logger.bindings() as { traceId?: string }).traceId,
          sameSignal: ctx.signal === replaced.signal,
        })),
      ],
    });
    await w.start();
    const id = await sluice.enqueue(mwSwap, {});
    expect(await sluice.waitFor(id, { timeoutMs: 10_000 })).toEqual({ traceId: 'trace-1', sameSignal: true });
  });

  it('a middleware may answer without calling the handler, or fail the job; calling next() twice fails it', async () => {
    let handlerRuns = 0;
    const w = worker({
      handlers: [mwJob.handle(async () => void handlerRuns++)],
      middleware: [
        async (ctx, next) => {
          const mode = (ctx.payload as { mode: string }).mode;
          if (mode === 'skip') return 'answered by middleware';
          if (mode === 'deny') throw new Error('denied by middleware');
          if (mode === 'twice') {
            await next();
            return next();
          }
          return next();
        },
      ],
    });
    await w.start();
    const skip = await sluice.enqueue(mwJob, { tenant: 't', mode: 'skip' });
    expect(await sluice.waitFor(skip, { timeoutMs: 10_000 })).toBe('answered by middleware');
    expect(handlerRuns).toBe(0);

    const deny = await sluice.enqueue(mwJob, { tenant: 't', mode: 'deny' });
    const err = await sluice.waitFor(deny, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(((err as Error).cause as Error).message).toBe('denied by middleware');
    expect(handlerRuns).toBe(0);

    const twice = await sluice.enqueue(mwJob, { tenant: 't', mode: 'twice' });
    const err2 = await sluice.waitFor(twice, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(JobFailedError);
    expect(((err2 as Error).cause as Error).message).toMatch(/next\(\) twice/);
    expect(handlerRuns).toBe(1);
  });

  it('refuses bad middleware: not a function (option or use()), or use() after start', async () => {
    const handlers = [mwJob.handle(() => 1)];
    for (const middleware of [[42], 'x', [() => 1, null]]) {
      expect(() => createWorker({ connectionString: db.url, handlers, middleware: middleware as never })).toThrow(
        expect.objectContaining({ name: 'ValidationError', field: 'createWorker.middleware' }),
      );
    }
    const w = worker({ handlers });
    expect(() => w.use(42 as never)).toThrow(expect.objectContaining({ name: 'ValidationError', field: 'use' }));
    await w.start();
    expect(() => w.use(async (_c, next) => next())).toThrow(WorkerStateError);
  });
});

describe('events (pub/sub)', () => {
  const receipt = defineJob({
    name: 'ev.receipt',
    queue: 'ev.mail',
    schema: z.object({ orderId: z.number() }),
    maxAttempts: 3,
    backoff: { kind: 'fixed', baseMs: 10, jitter: 0 },
  });
  const stats = defineJob({ name: 'ev.stats', queue: 'ev.stats', schema: z.object({ orderId: z.number() }), maxAttempts: 1 });
  const runs: { name: string; orderId: number; attempt: number }[] = [];
  let subscriber: Promise<void> | null = null;
  const startSubscriber = () =>
    (subscriber ??= (async () => {
      await db.pool.query(`CREATE TABLE orders (id int PRIMARY KEY)`);
      await db.pool.query(`CREATE TABLE ev_runs (job_id bigint, started_at timestamptz DEFAULT clock_timestamp(), ended_at timestamptz)`);
      const w = createWorker({
        connectionString: db.url,
        pollIntervalMs: 100,
        runScheduler: false,
        handlers: [
          receipt.handle(async (p, ctx) => {
            await db.pool.query(`INSERT INTO ev_runs (job_id) VALUES ($1)`, [ctx.job.id]);
            runs.push({ name: ctx.job.name, orderId: p.orderId, attempt: ctx.job.attempt });
            // Its own retry policy: the first attempt for order 2 fails.
            if (p.orderId === 2 && ctx.job.attempt === 1) throw new Error('smtp down');
            await sleep(50);
            await db.pool.query(`UPDATE ev_runs SET ended_at = clock_timestamp() WHERE job_id = $1`, [ctx.job.id]);
          }),
          stats.handle(async (p, ctx) => {
            await db.pool.query(`INSERT INTO ev_runs (job_id) VALUES ($1)`, [ctx.job.id]);
            runs.push({ name: ctx.job.name, orderId: p.orderId, attempt: ctx.job.attempt });
            await db.pool.query(`UPDATE ev_runs SET ended_at = clock_timestamp() WHERE job_id = $1`, [ctx.job.id]);
          }),
        ],
        subscriptions: [
          { topic: 'order.placed', job: receipt },
          { topic: 'order.placed', job: stats },
          { topic: 'order.shipped', job: stats },
        ],
      });
      await w.start();
      // Kept for the whole block; stopped with the file.
      afterAllStop.push(w);
    })());
  const afterAllStop: Worker[] = [];
  afterAll(async () => {
    await Promise.all(afterAllStop.map((w) => w.stop()));
  });

  const jobsFor = (orderId: number) =>
    count(
      db.pool,
      `SELECT (SELECT count(*) FROM sluice.jobs WHERE payload->>'orderId' = $1) + (SELECT count(*) FROM sluice.job_history WHERE payload->>'orderId' = $1)
              + (SELECT count(*) FROM sluice.dead_jobs WHERE payload->>'orderId' = $1) AS n`,
      [String(orderId)],
    );

  it("a publish in a rolled-back transaction leaves no jobs; committed, one job per subscriber, each with its own name, queue and retries", async () => {
    await startSubscriber();
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO orders VALUES (1)`);
      const lost = await sluice.publish('order.placed', { orderId: 1 }, { tx: client });
      expect(lost).toHaveLength(2);
      await client.query('ROLLBACK');
      expect(await jobsFor(1)).toBe(0);
      await expect(sluice.getJob(lost[0]!)).rejects.toBeInstanceOf(JobNotFoundError);

      await client.query('BEGIN');
      await client.query(`INSERT INTO orders VALUES (2)`);
      const ids = await sluice.publish('order.placed', { orderId: 2 }, { tx: client });
      await client.query('COMMIT');
      expect(ids).toHaveLength(2);
      expect(await jobsFor(2)).toBe(2);
      const jobs = await Promise.all(ids.map((id) => sluice.getJob(id)));
      expect(jobs.map((j) => [j.name, j.queue]).sort()).toEqual([
        ['ev.receipt', 'ev.mail'],
        ['ev.stats', 'ev.stats'],
      ]);
      await Promise.all(ids.map((id) => sluice.waitFor(id, { timeoutMs: 10_000 })));
      const done = await Promise.all(ids.map((id) => sluice.getJob(id)));
      const byName = Object.fromEntries(done.map((j) => [j.name, j]));
      expect(byName['ev.receipt']!.attempt).toBe(2);
      expect(byName['ev.receipt']!.errors.map((e) => e.message)).toEqual(['smtp down']);
      expect(byName['ev.stats']!.attempt).toBe(1);
      expect(runs.filter((r) => r.orderId === 1)).toEqual([]);
    } finally {
      client.release();
    }
  });

  it('by default subscribers run in parallel; sequential makes the second depend on the first', async () => {
    await startSubscriber();
    const client = await db.pool.connect();
    let parallel: number[];
    let sequential: number[];
    try {
      await client.query('BEGIN');
      parallel = await sluice.publish('order.placed', { orderId: 3 }, { tx: client });
      sequential = await sluice.publish('order.placed', { orderId: 4 }, { tx: client, sequential: true });
      // Seen inside the transaction, before any worker can touch them.
      const p = await Promise.all(parallel.map((id) => sluice.getJob(id, { tx: client })));
      expect(p.map((j) => j.state)).toEqual(['available', 'available']);
      expect(p.map((j) => j.dependsOn)).toEqual([null, null]);
      const s = await Promise.all(sequential.map((id) => sluice.getJob(id, { tx: client })));
      expect(s.map((j) => j.state)).toEqual(['available', 'waiting']);
      expect(s[1]!.dependsOn).toEqual([sequential[0]]);
      expect(s[0]!.name).not.toBe(s[1]!.name);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await Promise.all([...parallel, ...sequential].map((id) => sluice.waitFor(id, { timeoutMs: 10_000 })));
    const { rows } = await db.pool.query(
      `SELECT (SELECT attempted_at FROM sluice.job_history WHERE id = $2) AS second_claimed,
              (SELECT finished_at FROM sluice.job_history WHERE id = $1) AS first_finished,
              (SELECT started_at FROM ev_runs WHERE job_id = $2) AS second_started,
              (SELECT ended_at FROM ev_runs WHERE job_id = $1) AS first_ended`,
      [sequential[0], sequential[1]],
    );
    expect(rows[0].second_claimed.getTime()).toBeGreaterThanOrEqual(rows[0].first_finished.getTime());
    expect(rows[0].second_started.getTime()).toBeGreaterThan(rows[0].first_ended.getTime());
  });

  it('publish works from SQL (a trigger could call it); a topic without subscribers enqueues nothing', async () => {
    await startSubscriber();
    const { rows } = await db.pool.query(`SELECT id FROM sluice.publish('order.shipped', '{"orderId": 5}') AS id`);
    expect(rows).toHaveLength(1);
    const job = await sluice.getJob(Number(rows[0].id));
    expect(job.name).toBe('ev.stats');
    await sluice.waitFor(job.id, { timeoutMs: 10_000 });
    expect(await sluice.publish('order.nobody', { orderId: 6 })).toEqual([]);
    expect(await jobsFor(6)).toBe(0);
  });

  it('bad input: topic names, payload size, subscription declarations — named errors, nothing written', async () => {
    for (const topic of ['bad topic', '', 'x'.repeat(129), 42]) {
      const err = await sluice.publish(topic as never, { orderId: 7 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('topic');
    }
    const small = new Sluice({ pool: db.pool, maxPayloadBytes: 100 });
    const err = await small.publish('order.placed', { orderId: 7, pad: 'x'.repeat(200) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('payload');
    await small.close();
    await expect(db.pool.query(`SELECT sluice.publish('bad topic', '{"orderId": 7}')`)).rejects.toMatchObject({ code: '22023' });
    expect(await jobsFor(7)).toBe(0);

    const handlers = [stats.handle(() => 1)];
    expect(() => createWorker({ connectionString: db.url, handlers, subscriptions: [{ topic: 'bad topic', job: stats }] })).toThrow(
      expect.objectContaining({ name: 'ValidationError', field: 'createWorker.subscriptions.0.topic' }),
    );
    expect(() => createWorker({ connectionString: db.url, handlers, subscriptions: [{ topic: 'ok', job: stats }, { topic: 'ok' } as never] })).toThrow(
      expect.objectContaining({ name: 'ValidationError', field: 'createWorker.subscriptions.1.job' }),
    );
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.subscriptions WHERE topic IN ('bad topic', 'ok')`)).toBe(0);
  });
});
