import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PermanentError, Sluice, createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { PREFETCH_AUTO_MAX, PREFETCH_HOLD_MAX_MS, PREFETCH_PER_SLOT_MAX, PREFETCH_SMALL_WORKER_MAX, Prefetch } from '../packages/sluice/src/worker/prefetch.js';
import { ON_LISTEN_SESSION, count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { recordingPool } from './helpers/recording-pool.js';
import { captureLogs } from './helpers/log-capture.js';
import { pino } from 'pino';
import { Completer } from '../packages/sluice/src/worker/completer.js';
import { jobClaim } from '../packages/sluice/src/sql/job-leases.js';

let db: TestDb;
let sluice: Sluice;
const workers: Worker[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await db.drop();
});

function start(...args: Parameters<typeof createWorker>): Worker {
  const w = createWorker({ connectionString: db.url, pollIntervalMs: 200, ...args[0] });
  workers.push(w);
  return w;
}

describe('worker', () => {
  it('runs each enqueued job once and moves it to history', async () => {
    const job = defineJob({ name: 'count.up', queue: 'w1', schema: z.object({ n: z.number() }) });
    const seen: number[] = [];
    const w = start({ handlers: [job.handle(async (p) => void seen.push(p.n))], concurrency: 4 });
    await w.start();
    const ids = await sluice.enqueueMany(job, Array.from({ length: 200 }, (_, n) => ({ n })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'w1'`)) === 200, { what: '200 completed' });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, n) => n));
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'w1'`)).toBe(0);
    const done = await sluice.getJob(ids[0]!);
    expect(done.state).toBe('completed');
    expect(done.attempt).toBe(1);
  });

  it('retries with backoff, keeps every error, then dead-letters; replay runs it again', async () => {
    let calls = 0;
    let failUntil = Infinity;
    const job = defineJob({
      name: 'flaky',
      queue: 'w2',
      schema: z.object({}),
      maxAttempts: 3,
      backoff: { kind: 'exponential', baseMs: 100, factor: 2, jitter: 0 },
    });
    const w = start({
      handlers: [
        job.handle(async () => {
          calls++;
          if (calls < failUntil) throw new Error(`boom ${calls}`);
        }),
      ],
    });
    await w.start();
    const id = await sluice.enqueue(job, {});
    const dead = await waitUntil(async () => {
      const j = await sluice.getJob(id);
      return j.state === 'dead' ? j : null;
    }, { what: 'dead job' });
    expect(calls).toBe(3);
    expect(dead.errors.map((e) => e.message)).toEqual(['boom 1', 'boom 2', 'boom 3']);
    expect(dead.errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
    const { rows } = await db.pool.query(`SELECT reason FROM sluice.dead_jobs WHERE id = $1`, [id]);
    expect(rows[0].reason).toBe('exhausted');

    failUntil = 0;
    await sluice.replayDead([id]);
    await waitUntil(async () => (await sluice.getJob(id)).state === 'completed', { what: 'replayed job completed' });
    expect(calls).toBe(4);
  });

  it('a PermanentError goes to the dead-letter queue at once', async () => {
    const job = defineJob({ name: 'perm', queue: 'w3', schema: z.object({}), maxAttempts: 10 });
    const w = start({ handlers: [job.handle(async () => { throw new PermanentError('no way'); })] });
    await w.start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(async () => (await sluice.getJob(id)).state === 'dead', { what: 'dead' });
    const j = await sluice.getJob(id);
    expect(j.attempt).toBe(1);
    expect(j.errors[0]).toMatchObject({ name: 'PermanentError', message: 'no way' });
  });

  it('a job inserted by raw SQL with a bad payload fails permanently with the validation error', async () => {
    const job = defineJob({ name: 'typed', queue: 'w4', schema: z.object({ email: z.string().email() }), maxAttempts: 5 });
    let ran = 0;
    const w = start({ handlers: [job.handle(async () => void ran++)] });
    await w.start();
    const { rows } = await db.pool.query(`SELECT sluice.enqueue('typed', '{"email": 42}') AS id`);
    const id = Number(rows[0].id);
    await waitUntil(async () => (await sluice.getJob(id)).state === 'dead', { what: 'dead' });
    const j = await sluice.getJob(id);
    expect(ran).toBe(0);
    expect(j.attempt).toBe(1);
    expect(j.errors[0]!.name).toBe('PayloadValidationError');
    expect(j.errors[0]!.message).toContain('email');
    expect(j.errors[0]!.message).not.toContain('42');
  });

  it('runs higher priority first and FIFO within a priority', async () => {
    const job = defineJob({ name: 'ordered', queue: 'w5', schema: z.object({ tag: z.string() }) });
    const order: string[] = [];
    await sluice.enqueue(job, { tag: 'low-1' }, { priority: -1 });
    await sluice.enqueue(job, { tag: 'mid-1' });
    await sluice.enqueue(job, { tag: 'high-1' }, { priority: 5 });
    await sluice.enqueue(job, { tag: 'mid-2' });
    await sluice.enqueue(job, { tag: 'high-2' }, { priority: 5 });
    const w = start({ handlers: [job.handle(async (p) => void order.push(p.tag))], concurrency: 1, prefetch: 0 });
    await w.start();
    await waitUntil(() => order.length === 5, { what: '5 jobs' });
    expect(order).toEqual(['high-1', 'high-2', 'mid-1', 'mid-2', 'low-1']);
  });

  it('promotes a delayed job when it is due', async () => {
    const job = defineJob({ name: 'later', queue: 'w6', schema: z.object({}) });
    let startedAt = 0;
    const w = start({ handlers: [job.handle(async () => void (startedAt = Date.now()))], pollIntervalMs: 5_000 });
    await w.start();
    const runAt = new Date(Date.now() + 500);
    const id = await sluice.enqueue(job, {}, { runAt });
    expect((await sluice.getJob(id)).state).toBe('scheduled');
    await waitUntil(() => startedAt > 0, { what: 'delayed job started' });
    expect(startedAt).toBeGreaterThanOrEqual(runAt.getTime() - 5);
  });

  it('a custom backoff function sets the retry delay', async () => {
    const seen: number[] = [];
    const job = defineJob({ name: 'custom.backoff', queue: 'w7', schema: z.object({}), maxAttempts: 2, backoff: (attempt) => attempt * 3_600_000 });
    const w = start({ handlers: [job.handle(async () => { throw new Error('fail'); })] });
    w.on('job', (e) => seen.push(e.attempt));
    await w.start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(() => seen.length === 1, { what: 'first failure' });
    const { rows } = await db.pool.query(`SELECT state, extract(epoch FROM run_at - now()) AS s FROM sluice.jobs WHERE id = $1`, [id]);
    expect(rows[0].state).toBe('scheduled');
    expect(Number(rows[0].s)).toBeGreaterThan(3_500);
  });

  it('a job listener that throws does not stall acknowledgements', async () => {
    const job = defineJob({ name: 'listened', queue: 'w8', schema: z.object({ n: z.number() }) });
    const w = start({ handlers: [job.handle(() => {})] });
    let events = 0;
    w.on('job', () => {
      events++;
      throw new Error('listener bug');
    });
    await w.start();
    const ids = await sluice.enqueueMany(job, Array.from({ length: 20 }, (_, n) => ({ n })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'w8'`)) === 20, { what: '20 completed' });
    // Each ack was reported once; none was rewritten and reported again as
    // stale. stop() writes every pending ack first, so nothing can follow it.
    await w.stop();
    expect(events).toBe(ids.length);
    expect(w.load.pendingAcks).toBe(0);
  });

  it('a result or error holding text PostgreSQL cannot store still ends the job', async () => {
    const nul = defineJob({ name: 'nul.result', queue: 'w9', schema: z.object({}) });
    const bad = defineJob({ name: 'nul.error', queue: 'w9', schema: z.object({}), maxAttempts: 1 });
    const w = start({
      handlers: [
        nul.handle(() => ({ text: 'a\u0000b' })),
        bad.handle(() => {
          throw new Error('broken \ud800 text');
        }),
      ],
    });
    await w.start();
    const okId = await sluice.enqueue(nul, {});
    const badId = await sluice.enqueue(bad, {});
    await waitUntil(async () => (await sluice.getJob(okId)).state === 'completed', { what: 'completed' });
    expect((await sluice.getJob(okId)).result).toBeNull();
    await waitUntil(async () => (await sluice.getJob(badId)).state === 'dead', { what: 'dead' });
    expect((await sluice.getJob(badId)).errors[0]!.message).toBe('broken \ufffd text');
  });
});

// The default prefetch follows the jobs' pace: a worker of fast jobs claims
// well ahead of its slots (fewer statements a job), one of slow jobs claims no
// more than before (concurrency ahead), and a prefetch given is kept as given.
const held = (w: Worker) => count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE locked_by = $1`, [w.id]);

  it('a backoff function that throws, or a thrown value with no text form, fails the attempt like any error and frees the slot', async () => {
    const badBackoff = defineJob({
      name: 'backoff.throws',
      queue: 'w10',
      schema: z.object({}),
      maxAttempts: 2,
      backoff: () => {
        throw new TypeError('backoff bug');
      },
    });
    const opaque = defineJob({ name: 'throws.opaque', queue: 'w10', schema: z.object({}), maxAttempts: 1 });
    const after = defineJob({ name: 'after.them', queue: 'w10', schema: z.object({}) });
    const w = start({
      concurrency: 1,
      handlers: [
        badBackoff.handle(() => {
          throw new Error('first try fails');
        }),
        opaque.handle(() => {
          throw Object.create(null);
        }),
        after.handle(() => {}),
      ],
    });
    await w.start();
    const failing = await sluice.enqueue(badBackoff, {});
    const opaqueId = await sluice.enqueue(opaque, {}, { priority: -1 });
    const afterId = await sluice.enqueue(after, {}, { priority: -2 });
    // The job type's stored backoff applies: the failed attempt is scheduled again.
    await waitUntil(async () => (await sluice.getJob(failing)).state === 'scheduled', { what: 'the retry scheduled' });
    await waitUntil(async () => (await sluice.getJob(opaqueId)).state === 'dead', { what: 'the opaque throw dead' });
    expect((await sluice.getJob(opaqueId)).errors[0]).toMatchObject({ name: 'NonError', message: '[object Object]' });
    // One slot: the job behind them ran, so neither failure kept it.
    await waitUntil(async () => (await sluice.getJob(afterId)).state === 'completed', { what: 'the next job completed' });
    expect(w.load.running).toBe(0);
    await w.stop();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'w10' AND state = 'running'`)).toBe(0);
  });

  it('a job whose name this worker has no handler for is retried, not dead-lettered, and runs once a worker handles it', async () => {
    const older = defineJob({ name: 'older.kind', queue: 'w12', schema: z.object({}) });
    const newer = defineJob({ name: 'newer.kind', queue: 'w12', schema: z.object({}), backoff: { kind: 'fixed', baseMs: 100, jitter: 0 } });
    const a = start({ handlers: [older.handle(() => {})] });
    await a.start();
    const id = await sluice.enqueue(newer, {});
    await waitUntil(async () => (await sluice.getJob(id)).errors.length >= 1, { what: 'a first attempt' });
    await a.stop();
    const failed = await sluice.getJob(id);
    expect(failed.state).not.toBe('dead');
    expect(failed.errors[0]).toMatchObject({ name: 'UnknownJobError' });
    const b = start({ handlers: [newer.handle(() => {})] });
    await b.start();
    await waitUntil(async () => (await sluice.getJob(id)).state === 'completed', { what: 'completed by a worker that handles it' });
  });

  it('two handlers for one job name are a ValidationError naming the second', () => {
    const job = defineJob({ name: 'twice.handled', queue: 'w13', schema: z.object({}) });
    expect(() => createWorker({ connectionString: db.url, handlers: [job.handle(() => {}), job.handle(() => {})] })).toThrow(
      expect.objectContaining({ name: 'ValidationError', field: 'createWorker.handlers.1' }),
    );
  });

  it('stop() called while start() is still registering waits for it and takes down everything it started', async () => {
    const job = defineJob({ name: 'stop.early', queue: 'w11', schema: z.object({}) });
    const w = start({ handlers: [job.handle(() => {})] });
    const started = w.start();
    // The registration is the first statement of start(): stop once it is under way.
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = $1`, [w.id])) === 1, {
      what: 'the worker registered',
      intervalMs: 1,
    });
    const stopped = w.stop();
    await started;
    await expect(stopped).resolves.toBeUndefined();
    // A second stop() waits for the same shutdown, and nothing of the worker is left in the database.
    await expect(w.stop()).resolves.toBeUndefined();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = $1`, [w.id])).toBe(0);
    expect(await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE datname = current_database() AND ${ON_LISTEN_SESSION}`)).toBe(0);
  });

describe('prefetch', () => {
  it('adaptive: concurrency until a job has run, then a window of work, bounded per slot and in all', () => {
    const p = new Prefetch(null, 4);
    expect(p.size).toBe(4);
    expect(p.holdMax).toBe(Infinity);
    for (let i = 0; i < 200; i++) p.observe(0.01);
    // A worker of few slots claims up to the small-worker bound; one of many, per slot.
    expect(p.size).toBe(PREFETCH_SMALL_WORKER_MAX);
    const many = new Prefetch(null, 50);
    for (let i = 0; i < 200; i++) many.observe(0.01);
    expect(many.size).toBe(50 * PREFETCH_PER_SLOT_MAX);
    for (let i = 0; i < 400; i++) p.observe(1_000);
    expect(p.size).toBe(4);
    // 4 slots busy for 100 ms at 20 ms a job: 20 ahead.
    for (let i = 0; i < 400; i++) p.observe(20);
    expect(p.size).toBeGreaterThanOrEqual(19);
    expect(p.size).toBeLessThanOrEqual(21);
    const wide = new Prefetch(null, 500);
    for (let i = 0; i < 200; i++) wide.observe(0.01);
    expect(wide.size).toBe(PREFETCH_AUTO_MAX);
    const given = new Prefetch(3, 4);
    for (let i = 0; i < 200; i++) given.observe(0.01);
    expect(given.size).toBe(3);
    given.slotsBusyFor(60_000);
    expect(given.size).toBe(3);
    expect(given.holdMax).toBe(Infinity);
  });

  it('slots busy longer than the jobs measured so far: the prefetch shrinks and what is held beyond the hold bound is surplus', () => {
    const p = new Prefetch(null, 2);
    for (let i = 0; i < 200; i++) p.observe(0.05);
    expect(p.size).toBe(PREFETCH_SMALL_WORKER_MAX);
    expect(p.holdMax).toBe(Math.floor((2 * PREFETCH_HOLD_MAX_MS) / 0.05));
    // Both slots stuck for a minute on jobs claimed at that pace.
    p.slotsBusyFor(60_000);
    expect(p.size).toBe(2);
    expect(p.holdMax).toBe(2);
    // Busy for 100 ms: 2 slots start 20 jobs within the hold bound.
    p.slotsBusyFor(100);
    expect(p.holdMax).toBe(Math.max(p.size, Math.floor((2 * PREFETCH_HOLD_MAX_MS) / 100)));
    // A job finished: the mean of what ran is the pace again until the next beat.
    p.observe(0.05);
    expect(p.size).toBe(PREFETCH_SMALL_WORKER_MAX);
  });

  it('a worker of fast jobs holds more than concurrency ahead once it has measured them; a given prefetch is kept', async () => {
    const fast = defineJob({ name: 'pf.fast', queue: 'pf1', schema: z.object({ block: z.boolean() }) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = start({ pollIntervalMs: 100, concurrency: 2, handlers: [fast.handle(async (p) => (p.block ? gate : undefined))] });
    await w.start();
    await sluice.enqueueMany(fast, Array.from({ length: 300 }, () => ({ block: false })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf1'`)) === 0, { what: 'fast jobs done' });
    // Both slots now wait on the gate; what else the worker holds is its prefetch.
    // More than the bound, so the bound is what stops the claims.
    await sluice.enqueueMany(fast, Array.from({ length: 2 * PREFETCH_SMALL_WORKER_MAX }, () => ({ block: true })));
    try {
      await waitUntil(async () => (await held(w)) > 2 + 2, { what: 'more than concurrency claimed ahead', timeoutMs: 10_000 });
      expect(await held(w)).toBeLessThanOrEqual(2 + PREFETCH_SMALL_WORKER_MAX);
    } finally {
      release();
    }

    let release2!: () => void;
    const gate2 = new Promise<void>((r) => (release2 = r));
    const fixed = start({ pollIntervalMs: 100, concurrency: 2, prefetch: 1, handlers: [fast.handle(async (p) => (p.block ? gate2 : undefined))] });
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf1'`)) === 0, { what: 'blocked jobs done' });
    await w.stop();
    await fixed.start();
    await sluice.enqueueMany(fast, Array.from({ length: 300 }, () => ({ block: false })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf1'`)) === 0, { what: 'fast jobs done (fixed)' });
    await sluice.enqueueMany(fast, Array.from({ length: 20 }, () => ({ block: true })));
    try {
      await waitUntil(async () => (await held(fixed)) === 3, { what: 'slots and the given prefetch held' });
      await new Promise((r) => setTimeout(r, 300));
      expect(await held(fixed)).toBe(3);
    } finally {
      release2();
    }
  });

  it('a worker of slow jobs claims no more than concurrency ahead', async () => {
    const slow = defineJob({ name: 'pf.slow', queue: 'pf2', schema: z.object({}) });
    const w = start({
      pollIntervalMs: 100,
      concurrency: 2,
      handlers: [slow.handle(() => new Promise((r) => setTimeout(r, 150)))],
    });
    await w.start();
    await sluice.enqueueMany(slow, Array.from({ length: 20 }, () => ({})));
    let most = 0;
    while ((await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf2'`)) > 0) {
      most = Math.max(most, await held(w));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(most).toBeGreaterThan(0);
    // Running, claimed ahead, and finished jobs whose answers are still being written.
    expect(most).toBeLessThanOrEqual(2 + 2 + 2);
  });

  // Claimed in a burst while the jobs ran fast, then found slow: the buffer
  // held them all while other workers with free slots had nothing to run.
  it('jobs claimed while they ran fast that turn out slow are handed back at the next beat, their attempt given back, and each runs once', async () => {
    const job = defineJob({ name: 'pf.turns', queue: 'pf-turns', schema: z.object({ slow: z.boolean(), n: z.number() }) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ran: number[] = [];
    const logs = captureLogs('info');
    const w = start({
      pollIntervalMs: 100,
      heartbeatIntervalMs: 300,
      concurrency: 2,
      logger: logs.logger,
      handlers: [
        job.handle(async (p) => {
          if (p.slow) await gate;
          ran.push(p.n);
        }),
      ],
    });
    await w.start();
    await sluice.enqueueMany(job, Array.from({ length: 100 }, (_, n) => ({ slow: false, n })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf-turns'`)) === 0, { what: 'fast jobs done' });
    // Fewer than the bound: one claim at the fast pace takes them all.
    await sluice.enqueueMany(job, Array.from({ length: 60 }, (_, n) => ({ slow: true, n: 100 + n })));
    const handedBack = () => logs.lines.filter((l) => String(l.msg).includes('buffered surplus handed back')).reduce((n, l) => n + Number(l.jobs), 0);
    try {
      // Both slots stuck: the beats hand back what they cannot start soon, down to the slots and a prefetch of two.
      await waitUntil(async () => (await held(w)) <= 4 && handedBack() >= 56, { what: 'the surplus handed back', timeoutMs: PREFETCH_HOLD_MAX_MS + 5_000 });
      const back = await db.pool.query<{ state: string; attempt: number; n: string }>(
        `SELECT state, attempt, count(*) n FROM sluice.jobs WHERE queue = 'pf-turns' AND locked_by IS NULL GROUP BY 1, 2`,
      );
      // Not run, and no attempt spent.
      expect(back.rows).toEqual([{ state: 'available', attempt: 0, n: String(60 - (await held(w))) }]);
    } finally {
      release();
    }
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf-turns'`)) === 0, { what: 'every job done' });
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 160 }, (_, n) => n));
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'pf-turns' AND attempt = 1`)).toBe(160);
  });

  // A limited queue listed first that came back empty was given the free
  // slots first again at the next claim, and the next one: a limited queue
  // listed after it, owed the slots, never got one, and the worker claimed in
  // a loop with no pause (found by review, 2026-12-02).
  it('two limited queues, the first empty: the second gets the free slot, and the worker does not claim in a loop', async () => {
    const first = defineJob({ name: 'two.first', queue: 'two-lim-first', schema: z.object({}) });
    const plain = defineJob({ name: 'two.plain', queue: 'two-plain', schema: z.object({}) });
    const second = defineJob({ name: 'two.second', queue: 'two-lim-second', schema: z.object({ n: z.number() }) });
    await sluice.queues.configure('two-lim-first', { concurrency: 10 });
    await sluice.queues.configure('two-lim-second', { concurrency: 10 });
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const ran: number[] = [];
    const { pool, sent } = recordingPool(db.url);
    const w = start({
      pool,
      connectionString: undefined,
      concurrency: 2,
      handlers: [first.handle(() => {}), plain.handle(() => held), second.handle((p) => void ran.push(p.n))],
    });
    try {
      await w.start();
      // One slot taken by a job that runs until released: one slot free.
      await sluice.enqueue(plain, {});
      await waitUntil(() => count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'two-plain' AND state = 'running'`), { what: 'the slot taken' });
      const claimsBefore = sent.filter((s) => s === 'sluice_job_claim').length;
      await sluice.enqueueMany(second, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      await waitUntil(() => ran.length === 3, { timeoutMs: 10_000, what: 'the second limited queue ran its jobs in the free slot' });
      expect(sent.filter((s) => s === 'sluice_job_claim').length - claimsBefore).toBeLessThan(100);
    } finally {
      release();
      await w.stop();
      await pool.end();
    }
  });

  // A run time past an SQL integer (a handler with no timeout that ran for
  // weeks) failed the acknowledgement's cast at every retry, and every
  // acknowledgement behind it in the batch waited forever.
  it('an acknowledgement of a run longer than an SQL integer of milliseconds is written', async () => {
    await sluice.enqueue(defineJob({ name: 'long.run', queue: 'long-run', schema: z.object({}) }), {});
    const [row] = await jobClaim(db.pool, { queues: ['long-run'], limits: [1], workerId: 'w:long', leaseMs: 60_000 });
    const applied: string[] = [];
    const completer = new Completer(db.pool, 'w:long', pino({ level: 'silent' }), (_ack, result) => applied.push(result));
    completer.push({ kind: 'complete', id: row!.id, attempt: row!.attempt, lease: row!.lease, name: row!.name, queue: row!.queue, runMs: 30 * 86_400_000, result: null });
    await completer.flush();
    expect(applied).toEqual(['completed']);
    expect((await sluice.getJob(row!.id)).state).toBe('completed');
  });

  // A 'leader' listener that threw inside stop() skipped the hand-back of the
  // buffered jobs and the last acknowledgements, and stop() rejected.
  it("a 'leader' listener that throws neither stops the worker's shutdown nor keeps its buffered jobs", async () => {
    const job = defineJob({ name: 'leader.throws', queue: 'leader-throws', schema: z.object({ hold: z.boolean() }) });
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    let started = 0;
    const w = start({
      handlers: [job.handle(async (p) => { started += 1; if (p.hold) await held; })],
      concurrency: 1,
      prefetch: 2,
      shutdownTimeoutMs: 200,
    });
    w.on('leader', () => {
      throw new Error('listener bug');
    });
    const ids = await sluice.enqueueMany(job, [{ hold: true }, { hold: false }, { hold: false }]);
    await w.start();
    await waitUntil(() => started === 1 && w.load.buffered === 2, { what: '1 running, 2 buffered' });
    const stopping = w.stop();
    release();
    await stopping;
    const buffered = await Promise.all(ids.slice(1).map((id) => sluice.getJob(id)));
    expect(buffered.map((j) => [j.state, j.attempt])).toEqual([['available', 0], ['available', 0]]);
  });
});
