import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { z } from 'zod';
import { CancelledError, LeaseLostError, Sluice, TimeoutError, createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { spawnFixture, type Child } from './helpers/child.js';
import { CuttableProxy } from './helpers/cuttable-proxy.js';
import { ClaimWatchingPool } from './helpers/claims.js';
import { ON_LISTEN_SESSION, count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';
import { holdJob } from './fixtures/hold-job.js';
import { Completer } from '../packages/sluice/src/worker/completer.js';
import { jobClaim, jobCompleteMany, jobFailMany, jobProgress, jobReleaseMany } from '../packages/sluice/src/sql/job-leases.js';

let db: TestDb;
let sluice: Sluice;
const workers: Worker[] = [];
const children: Child[] = [];
const pools: ClaimWatchingPool[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query('CREATE TABLE held_runs (job_id bigint NOT NULL, attempt int NOT NULL)');
});
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.process.kill('SIGCONT');
    c.process.kill('SIGKILL');
    await c.exited;
  }
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await Promise.all(pools.splice(0).map((p) => p.end()));
});
afterAll(async () => {
  await db.drop();
});

function inProcessWorker(options: Partial<Parameters<typeof createWorker>[0]> & Pick<Parameters<typeof createWorker>[0], 'handlers'>): Worker {
  const connection = options.pool ? {} : { connectionString: db.url };
  const w = createWorker({ ...connection, pollIntervalMs: 100, heartbeatIntervalMs: 200, workerDeadAfterMs: 1_000, ...options });
  workers.push(w);
  return w;
}

/** The job once completed (its row as getJob reads it). */
function completed(id: number, what: string, timeoutMs?: number) {
  return waitUntil(
    async () => {
      const j = await sluice.getJob(id);
      return j.state === 'completed' ? j : null;
    },
    { timeoutMs, what },
  );
}

function holdChild(holdMs: number, deadAfterMs = 1_000): Child {
  const c = spawnFixture('test/fixtures/hold-worker.ts', [db.url, String(holdMs), String(deadAfterMs)]);
  children.push(c);
  return c;
}

describe('rescue of a crashed worker', () => {
  it('a job whose worker was SIGKILLed mid-job runs again elsewhere, the crash kept in its errors', async () => {
    const child = holdChild(60_000);
    await child.waitForLine(/^READY$/);
    const id = await sluice.enqueue(holdJob, {});
    await child.waitForLine(new RegExp(`^STARTED ${id} 1$`));
    child.process.kill('SIGKILL');
    await child.exited;

    const w = inProcessWorker({ handlers: [holdJob.handle(async () => {})] });
    await w.start();
    const done = await completed(id, 'rescued job completed');
    expect(done.attempt).toBe(2);
    expect(done.errors).toHaveLength(1);
    expect(done.errors[0]).toMatchObject({ attempt: 1, kind: 'crash', name: 'WorkerLostError' });
  });

  it('a paused worker (SIGSTOP) loses its job; its late completion after SIGCONT changes nothing', async () => {
    const child = holdChild(1_500);
    await child.waitForLine(/^READY$/);
    const id = await sluice.enqueue(holdJob, {});
    await child.waitForLine(new RegExp(`^STARTED ${id} 1$`));
    child.process.kill('SIGSTOP');

    const w = inProcessWorker({ handlers: [holdJob.handle(async () => {})] });
    await w.start();
    await waitUntil(async () => (await sluice.getJob(id)).state === 'completed', { what: 'completed elsewhere' });
    const before = await db.pool.query('SELECT * FROM sluice.job_history WHERE id = $1', [id]);
    await w.stop();

    child.process.kill('SIGCONT');
    // The paused handler finishes its sleep. Attempt 1 no longer holds the job: the
    // worker's next beat finds that and drops its answer, or the answer is refused.
    await waitUntil(() => count(db.pool, 'SELECT count(*) n FROM held_runs WHERE job_id = $1 AND attempt = 1', [id]), {
      what: 'the paused handler finished',
    });
    // A graceful stop writes every answer still pending before the process ends.
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(child.lines.filter((l) => l.startsWith(`ANSWERED ${id} `) && !l.endsWith(' stale'))).toEqual([]);
    const after = await db.pool.query('SELECT * FROM sluice.job_history WHERE id = $1', [id]);
    expect(after.rows).toEqual(before.rows);
    expect(after.rows).toHaveLength(1);
    expect(after.rows[0].attempt).toBe(2);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE id = $1', [id])).toBe(0);
  });

  it('a crash on the last attempt sends the job to the dead-letter queue as crashed', async () => {
    const job = defineJob({ name: 'last.chance', queue: 'lc', schema: z.object({}), maxAttempts: 1 });
    const id = await sluice.enqueue(job, {});
    // A claim by a worker that never heartbeats, with its lease already lapsed.
    await db.pool.query(
      `UPDATE sluice.jobs SET state = 'running', attempt = 1, locked_by = 'ghost', locked_until = now() - interval '1 s' WHERE id = $1`,
      [id],
    );
    const w = inProcessWorker({ handlers: [job.handle(async () => {})] });
    await w.start();
    await waitUntil(async () => (await sluice.getJob(id)).state === 'dead', { what: 'dead' });
    const { rows } = await db.pool.query('SELECT reason FROM sluice.dead_jobs WHERE id = $1', [id]);
    expect(rows[0].reason).toBe('crashed');
  });
});

describe('rescue of a worker whose process ended, before its lease lapses', () => {
  const idle = defineJob({ name: 'session.idle', queue: 'session-idle', schema: z.object({}) });

  /** A leader in this process that never claims the child's jobs: its rescuer is what is watched. */
  async function rescuingLeader(): Promise<Worker> {
    const w = inProcessWorker({ handlers: [idle.handle(async () => {})] });
    await w.start();
    await waitUntil(() => w.isLeader, { what: 'the in-process worker leads' });
    return w;
  }

  async function childSession(workerPid: number): Promise<number> {
    return waitUntil(async () => {
      const { rows } = await db.pool.query<{ session_pid: number | null }>('SELECT session_pid FROM sluice.workers WHERE pid = $1', [workerPid]);
      return rows[0]?.session_pid ?? null;
    }, { what: "the child's beat on its LISTEN session" });
  }

  it('a worker SIGKILLed mid-job with a lease of a minute has its job back in the queue long before the lease lapses', async () => {
    await rescuingLeader();
    const child = holdChild(120_000, 60_000);
    await child.waitForLine(/^READY$/);
    const id = await sluice.enqueue(holdJob, {});
    await child.waitForLine(new RegExp(`^STARTED ${id} 1$`));
    await childSession(child.pid);
    const { rows: leased } = await db.pool.query<{ locked_until: Date }>('SELECT locked_until FROM sluice.jobs WHERE id = $1', [id]);
    child.process.kill('SIGKILL');
    await child.exited;

    const back = await waitUntil(async () => {
      const j = await sluice.getJob(id);
      return j.state === 'available' ? j : null;
    }, { timeoutMs: 20_000, what: 'the killed worker\'s job back in its queue' });
    expect(back.errors).toHaveLength(1);
    expect(back.errors[0]).toMatchObject({ attempt: 1, kind: 'crash', name: 'WorkerLostError' });
    // The rescue came from the ended session, not from the lease: the lease still had most of its minute.
    expect(new Date(back.errors[0]!.at).getTime()).toBeLessThan(leased[0]!.locked_until.getTime() - 30_000);
  });

  it('a worker SIGKILLed with a job claimed ahead of its slot: that job comes back with its attempt given back, the running one with its attempt spent', async () => {
    // Jobs earlier tests left in the queue would take the slot first.
    await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'hold'`);
    await rescuingLeader();
    const child = holdChild(120_000, 60_000);
    await child.waitForLine(/^READY$/);
    // One slot: the first runs, the second waits in the worker's buffer.
    const [runningId, bufferedId] = await sluice.enqueueMany(holdJob, [{}, {}]);
    await child.waitForLine(new RegExp(`^STARTED ${runningId} 1$`));
    await waitUntil(
      async () => (await count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE id = $1 AND buffered_at > attempted_at', [bufferedId])) === 1,
      { what: 'a beat that found the second job buffered' },
    );
    child.process.kill('SIGKILL');
    await child.exited;

    const back = async (id: number) =>
      waitUntil(async () => {
        const j = await sluice.getJob(id);
        return j.state === 'available' ? j : null;
      }, { timeoutMs: 20_000, what: `job ${id} back in its queue` });
    const ran = await back(runningId!);
    expect(ran.attempt).toBe(1);
    expect(ran.errors).toEqual([expect.objectContaining({ attempt: 1, kind: 'crash', name: 'WorkerLostError' })]);
    expect(ran.errors[0]!.unstarted).toBeUndefined();
    const unstarted = await back(bufferedId!);
    expect(unstarted.attempt).toBe(0);
    expect(unstarted.errors).toEqual([expect.objectContaining({ attempt: 1, kind: 'crash', unstarted: true })]);
    await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'hold'`);
  });

  it("a live worker whose LISTEN session an administrator ends keeps its job: it reconnects and beats within the grace", async () => {
    await rescuingLeader();
    const child = holdChild(5_000, 60_000);
    await child.waitForLine(/^READY$/);
    const id = await sluice.enqueue(holdJob, {});
    await child.waitForLine(new RegExp(`^STARTED ${id} 1$`));
    const session = await childSession(child.pid);
    await db.pool.query('SELECT pg_terminate_backend($1)', [session]);
    await child.waitForLine(new RegExp(`^ANSWERED ${id} 1 completed$`), 20_000);
    const done = await sluice.getJob(id);
    expect(done).toMatchObject({ state: 'completed', attempt: 1, errors: [] });
    expect(await childSession(child.pid)).not.toBe(session);
  });

  it('a live worker whose LISTEN path is cut for 9 s, its pool direct, keeps its running job: it beats through the pool at once', async () => {
    const job = defineJob({ name: 'session.blip', queue: 'session-blip', schema: z.object({}), maxAttempts: 5 });
    const runs: number[] = [];
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    try {
      // The leader under test: its pool goes straight to the server, its LISTEN session through the proxy.
      const w = inProcessWorker({
        listenConnectionString: proxy.url(),
        handlers: [
          job.handle(async (_p, ctx) => {
            runs.push(ctx.job.attempt);
            await new Promise((r) => setTimeout(r, 10_000));
          }),
        ],
        concurrency: 1,
        workerDeadAfterMs: 60_000,
        heartbeatIntervalMs: 15_000,
        runScheduler: false,
      });
      await w.start();
      await waitUntil(() => w.isLeader, { what: 'the worker under test leads' });
      // Another live worker takes over the duties, the rescuer with them, once the first's session goes.
      await inProcessWorker({ handlers: [idle.handle(async () => {})], workerDeadAfterMs: 60_000, runScheduler: false }).start();
      const id = await sluice.enqueue(job, {});
      await waitUntil(() => runs.length === 1, { what: 'the job started' });
      proxy.cut();
      await new Promise((r) => setTimeout(r, 9_000));
      proxy.restore();
      const end = await waitUntil(async () => {
        const j = await sluice.getJob(id);
        return j.state === 'completed' || runs.length > 1 ? j : null;
      }, { timeoutMs: 40_000, what: 'the job completed, or run again' });
      expect({ runs, state: end.state, attempt: end.attempt, errors: end.errors }).toEqual({ runs: [1], state: 'completed', attempt: 1, errors: [] });
    } finally {
      await Promise.all(workers.splice(0).map((x) => x.stop()));
      await proxy.close();
    }
  }, 90_000);

  it('a job claimed after its worker was marked lost (a live worker, claiming through its pool) is not rescued by that mark', async () => {
    const job = defineJob({ name: 'session.marked', queue: 'session-marked', schema: z.object({}) });
    const id = await sluice.enqueue(job, {});
    await db.pool.query(
      `INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at, session_pid)
       VALUES ('lost:marked', 'h', 1, '{session-marked}', 1, 'x', now(), $1)`,
      [2 ** 30],
    );
    const rescue = async () => (await db.pool.query<{ id: string }>('SELECT id FROM sluice.rescue_expired(1000, 0)')).rows.map((r) => Number(r.id));
    expect(await rescue()).toEqual([]);
    const claimed = await jobClaim(db.pool, { queues: ['session-marked'], limits: [1], workerId: 'lost:marked', leaseMs: 60_000 });
    expect(claimed.map((c) => c.id)).toEqual([id]);
    expect(await rescue()).toEqual([]);
    expect((await sluice.getJob(id)).state).toBe('running');
    await db.pool.query(`DELETE FROM sluice.jobs WHERE id = $1`, [id]);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'lost:marked'`);
  });

  it('rescue_expired ends the leases of a worker whose session is gone, after the grace, and of no other', async () => {
    const job = defineJob({ name: 'session.lost', queue: 'session-lost', schema: z.object({}) });
    const gone = await sluice.enqueue(job, {});
    const beforeRestart = await sluice.enqueue(job, {});
    const alive = await sluice.enqueue(job, {});
    // A pid no session has: pids are below 2^22 on Linux (and 99999 on most other systems).
    const noSession = 2 ** 30;
    await db.pool.query(
      `INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at, session_pid) VALUES
         ('lost:gone', 'h', 1, '{session-lost}', 1, 'x', now(), $1),
         ('lost:before-restart', 'h', 2, '{session-lost}', 1, 'x', pg_postmaster_start_time() - interval '1 s', $1),
         ('lost:alive', 'h', 3, '{session-lost}', 1, 'x', now(), pg_backend_pid())`,
      [noSession],
    );
    for (const [id, worker] of [[gone, 'lost:gone'], [beforeRestart, 'lost:before-restart'], [alive, 'lost:alive']] as const) {
      await db.pool.query(
        `UPDATE sluice.jobs SET state = 'running', attempt = 1, locked_by = $2, attempted_at = now() - interval '1 s',
           locked_until = now() + interval '1 hour' WHERE id = $1`,
        [id, worker],
      );
    }
    const rescue = async (graceMs: number | null) =>
      (await db.pool.query<{ id: string }>('SELECT id FROM sluice.rescue_expired(1000, $1)', [graceMs])).rows.map((r) => Number(r.id));
    // Without the grace argument the leases alone count.
    expect(await rescue(null)).toEqual([]);
    // The first round only notes the session gone.
    expect(await rescue(0)).toEqual([]);
    expect(await rescue(0)).toEqual([gone]);
    expect((await sluice.getJob(gone)).state).toBe('available');
    expect((await sluice.getJob(beforeRestart)).state).toBe('running');
    expect((await sluice.getJob(alive)).state).toBe('running');
    // A long grace: nothing more.
    await db.pool.query(`UPDATE sluice.workers SET session_lost_at = NULL WHERE id LIKE 'lost:%'`);
    expect(await rescue(3_600_000)).toEqual([]);
    expect(await rescue(3_600_000)).toEqual([]);
    await db.pool.query(`DELETE FROM sluice.jobs WHERE id = ANY($1::bigint[])`, [[beforeRestart, alive]]);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id LIKE 'lost:%'`);
  });
});

describe('a claim lost in a crash', () => {
  // Claims commit without waiting for the WAL flush. If the server crashes
  // before the flush, the job is back as it was before the claim, and the
  // next claim hands out the same attempt number again, possibly to the same
  // worker: the earlier run's late answers must still be refused, which the
  // claim's lease (its time) in the fence does.
  const lostClaim = defineJob({ name: 'lost.claim', queue: 'lost-claim', schema: z.object({}) });
  // What crash recovery leaves when the claim's commit never reached the disk.
  const undoClaim = (id: number) =>
    db.pool.query(`UPDATE sluice.jobs SET state = 'available', attempt = 0, locked_by = NULL, locked_until = NULL, attempted_at = NULL WHERE id = $1`, [id]);

  it.each([
    ['another worker', 'worker-B'],
    ['the same worker', 'worker-A'],
  ])('reuses the attempt number when %s claims it again, and the first run can no longer complete, fail, report or release it', async (_, again) => {
    const id = await sluice.enqueue(lostClaim, {});
    const [first] = await jobClaim(db.pool, { queues: ['lost-claim'], limits: [1], workerId: 'worker-A', leaseMs: 60_000 });
    expect(first).toMatchObject({ id, attempt: 1 });
    await undoClaim(id);
    const [second] = await jobClaim(db.pool, { queues: ['lost-claim'], limits: [1], workerId: again, leaseMs: 60_000 });
    expect(second).toMatchObject({ id, attempt: 1 });
    expect(second!.lease).not.toBe(first!.lease);

    const late = { ids: [id], attempts: [1], runMs: [5], workerId: 'worker-A', leases: [first!.lease] };
    expect(await jobCompleteMany(db.pool, { ...late, results: [null] })).toEqual(new Set());
    const error = { attempt: 1, at: new Date().toISOString(), kind: 'error' as const, name: 'Error', message: 'late' };
    expect(await jobFailMany(db.pool, { ...late, errors: [error], permanent: [true], retryDelaysMs: [null] })).toEqual(new Map());
    expect(await jobProgress(db.pool, { id, attempt: 1, pct: 50, message: null, workerId: 'worker-A', lease: first!.lease })).toBe(false);
    expect(await jobReleaseMany(db.pool, { ids: [id], attempts: [1], leases: [first!.lease], workerId: 'worker-A' })).toBe(0);
    const row = await db.pool.query(`SELECT state, attempt, locked_by, progress FROM sluice.jobs WHERE id = $1`, [id]);
    expect(row.rows[0]).toEqual({ state: 'running', attempt: 1, locked_by: again, progress: null });

    // The claim that holds it still answers.
    const live = { workerId: again, lease: second!.lease };
    expect(await jobProgress(db.pool, { id, attempt: 1, pct: 50, message: null, ...live })).toBe(true);
    expect(await jobCompleteMany(db.pool, { ids: [id], attempts: [1], results: [null], runMs: [5], workerId: again, leases: [live.lease] })).toEqual(new Set([id]));
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = ${id} AND state = 'completed'`)).toBe(1);
  });

  it('a worker that gets a job it still runs stops the earlier run; the job completes once, by the new run', async () => {
    const runs: { attempt: number; signal: AbortSignal }[] = [];
    const finishes: string[] = [];
    const w = inProcessWorker({
      queues: ['lost-claim'],
      handlers: [
        lostClaim.handle(async (_, ctx) => {
          const run = runs.push({ attempt: ctx.job.attempt, signal: ctx.signal });
          // The first run waits until it is stopped; the second finishes at once.
          if (run === 1) {
            await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
            finishes.push(`first stopped: ${(ctx.signal.reason as Error).name}`);
            return 'first';
          }
          finishes.push('second done');
          return 'second';
        }),
      ],
    });
    await w.start();
    const id = await sluice.enqueue(lostClaim, {});
    await waitUntil(async () => runs.length === 1 || undefined, { what: 'first run' });
    await undoClaim(id);
    await db.pool.query(`SELECT pg_notify('sluice_jobs', 'lost-claim')`);
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = ${id}`)) === 1 || undefined, {
      what: 'the job completed',
    });
    expect(runs.map((r) => r.attempt)).toEqual([1, 1]);
    expect(runs[0]!.signal.aborted).toBe(true);
    expect(finishes.sort()).toEqual(['first stopped: LeaseLostError', 'second done']);
    const hist = await db.pool.query(`SELECT state, attempt, result FROM sluice.job_history WHERE id = $1`, [id]);
    expect(hist.rows).toEqual([{ state: 'completed', attempt: 1, result: 'second' }]);
    expect(w.load.running).toBe(0);
  });
});

describe('acknowledgements of two attempts of one job', () => {
  it('go out in separate batches, so that the stale one and the applied one are each reported as they are', async () => {
    const job = defineJob({ name: 'two.attempts', queue: 'two-attempts', schema: z.object({}), maxAttempts: 5 });
    const id = await sluice.enqueue(job, {});
    const claim = async () => (await jobClaim(db.pool, { queues: ['two-attempts'], limits: [1], workerId: 'worker-T', leaseMs: 60_000 }))[0]!;
    const first = await claim();
    // Attempt 1 failed and was retried at once, its answer written by someone else's hand (here, directly).
    const error = { attempt: 1, at: new Date().toISOString(), kind: 'error' as const, name: 'Error', message: 'first' };
    await jobFailMany(db.pool, { ids: [id], attempts: [1], errors: [error], permanent: [false], retryDelaysMs: [0], runMs: [1], workerId: 'worker-T', leases: [first.lease] });
    const second = await claim();
    expect(second).toMatchObject({ id, attempt: 2 });
    const reported: [number, string][] = [];
    const completer = new Completer(db.pool, 'worker-T', captureLogs('error').logger, (ack, result) => reported.push([ack.attempt, result]));
    const ack = (c: typeof first) => ({ kind: 'complete' as const, id, attempt: c.attempt, lease: c.lease, name: job.name, queue: 'two-attempts', runMs: 1, result: null });
    // A late answer of attempt 1 and the answer of attempt 2, waiting together.
    completer.push(ack(first));
    completer.push(ack(second));
    await completer.flush();
    expect(reported).toEqual([[1, 'stale'], [2, 'completed']]);
    expect((await sluice.getJob(id)).state).toBe('completed');
  });
});

describe('timeouts', () => {
  it('a handler that ignores its signal times out, is retried, and does not keep its slot', async () => {
    const stuck = defineJob({ name: 'stuck', queue: 'to', schema: z.object({}), maxAttempts: 2, timeoutMs: 100, backoff: { kind: 'fixed', baseMs: 10, jitter: 0 } });
    const quick = defineJob({ name: 'quick', queue: 'to', schema: z.object({}) });
    let signalled: unknown = null;
    let quickRan = false;
    const w = inProcessWorker({
      concurrency: 1,
      abortGraceMs: 50,
      handlers: [
        stuck.handle((_p, ctx) => {
          ctx.signal.addEventListener('abort', () => (signalled = ctx.signal.reason));
          return new Promise(() => {});
        }),
        quick.handle(() => void (quickRan = true)),
      ],
    });
    await w.start();
    const id = await sluice.enqueue(stuck, {}, { priority: 10 });
    const quickId = await sluice.enqueue(quick, {});
    const dead = await waitUntil(async () => {
      const j = await sluice.getJob(id);
      return j.state === 'dead' ? j : null;
    }, { what: 'timed-out job dead' });
    expect(dead.errors.map((e) => [e.kind, e.name])).toEqual([['timeout', 'TimeoutError'], ['timeout', 'TimeoutError']]);
    expect(signalled).toBeInstanceOf(TimeoutError);
    await waitUntil(async () => (await sluice.getJob(quickId)).state === 'completed', { what: 'quick job ran after' });
    expect(quickRan).toBe(true);
  });

  it('a per-job timeoutMs overrides the definition', async () => {
    const slow = defineJob({ name: 'slow.ok', queue: 'to2', schema: z.object({}), maxAttempts: 1 });
    const w = inProcessWorker({ abortGraceMs: 10, handlers: [slow.handle(() => new Promise((r) => setTimeout(r, 2_000)))] });
    await w.start();
    const id = await sluice.enqueue(slow, {}, { timeoutMs: 50 });
    await waitUntil(async () => (await sluice.getJob(id)).state === 'dead', { what: 'dead by timeout' });
    expect((await sluice.getJob(id)).errors[0]!.kind).toBe('timeout');
  });
});

describe('cancellation', () => {
  it('cancels a waiting job at once', async () => {
    const job = defineJob({ name: 'never', queue: 'cx', schema: z.object({}) });
    const id = await sluice.enqueue(job, {}, { delayMs: 60_000 });
    expect(await sluice.cancel(id)).toBe('scheduled');
    expect((await sluice.getJob(id)).state).toBe('cancelled');
    const { rows } = await db.pool.query(`SELECT sluice.cancel($1) AS s`, [id]);
    expect(rows[0].s).toBeNull();
  });

  it('a running job gets its signal fired in the worker that runs it and ends cancelled, not retried', async () => {
    const job = defineJob({ name: 'cancel.me', queue: 'cx2', schema: z.object({}), maxAttempts: 5 });
    let started = false;
    let reason: unknown = null;
    let runs = 0;
    const pool = new ClaimWatchingPool(db.url);
    pools.push(pool);
    const w = inProcessWorker({
      pool,
      handlers: [
        job.handle(
          (_p, ctx) =>
            new Promise<void>((_, reject) => {
              runs++;
              started = true;
              ctx.signal.addEventListener('abort', () => {
                reason = ctx.signal.reason;
                reject(ctx.signal.reason);
              });
            }),
        ),
      ],
    });
    await w.start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(() => started, { what: 'handler started' });
    const { rows } = await db.pool.query(`SELECT sluice.cancel($1) AS s`, [id]);
    expect(rows[0].s).toBe('running');
    await waitUntil(() => reason !== null, { what: 'signal fired' });
    expect(reason).toBeInstanceOf(CancelledError);
    const j = await sluice.getJob(id);
    expect(j.state).toBe('cancelled');
    expect(j.errors.at(-1)!.kind).toBe('cancelled');
    // The worker looks for work again and is given nothing: the job is not retried.
    await pool.nextEmptyClaim();
    expect(runs).toBe(1);
    expect((await sluice.getJob(id)).state).toBe('cancelled');
  });

  // DESIGN.md: "a lost notification costs latency, never a job".
  it("a cancel whose notice was lost while the worker's LISTEN session was down still fires the handler's signal", async () => {
    const job = defineJob({ name: 'cancel.unnoticed', queue: 'cx3', schema: z.object({}), maxAttempts: 5 });
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    let runs = 0;
    let reason: unknown = null;
    try {
      const w = inProcessWorker({
        listenConnectionString: proxy.url(),
        workerDeadAfterMs: 60_000,
        handlers: [
          job.handle(
            (_p, ctx) =>
              new Promise<void>((_, reject) => {
                runs++;
                ctx.signal.addEventListener('abort', () => {
                  reason = ctx.signal.reason;
                  reject(ctx.signal.reason);
                });
              }),
          ),
        ],
      });
      await w.start();
      const id = await sluice.enqueue(job, {});
      await waitUntil(() => runs === 1, { what: 'handler started' });
      const { rows: cutAt } = await db.pool.query(`SELECT now() AS at`);
      // The cancel's notice goes out while the worker's LISTEN session is down.
      proxy.cut();
      const { rows } = await db.pool.query(`SELECT sluice.cancel($1) AS s`, [id]);
      expect(rows[0].s).toBe('running');
      proxy.restore();
      await waitUntil(
        async () =>
          (await count(
            db.pool,
            `SELECT count(*) n FROM sluice.workers w JOIN pg_stat_activity a ON a.pid = w.session_pid WHERE w.id = $1 AND a.backend_start > $2`,
            [w.id, cutAt[0].at],
          )) >= 1,
        { what: 'the LISTEN session back' },
      );
      await waitUntil(() => reason !== null, { timeoutMs: 10_000, what: "the cancelled job's signal" });
      expect(reason).toBeInstanceOf(CancelledError);
      expect((await sluice.getJob(id)).state).toBe('cancelled');
      expect(runs).toBe(1);
      await waitUntil(() => w.load.running === 0, { what: 'the slot freed' });
    } finally {
      await Promise.all(workers.splice(0).map((x) => x.stop()));
      await proxy.close();
    }
  }, 60_000);

  // Only a cancel is a cancel: the beat once took every lost job missing
  // from sluice.jobs for cancelled (one the rescuer sent to the dead jobs,
  // one rescued and completed elsewhere), and told its handler "job N was
  // cancelled".
  it('a job whose lease lapsed and that the rescuer sent to the dead jobs is stopped, found by the heartbeat, as a lost lease, not as a cancel', async () => {
    const idle = defineJob({ name: 'lapsed.idle', queue: 'cx4-idle', schema: z.object({}) });
    const job = defineJob({ name: 'lapsed.last', queue: 'cx4', schema: z.object({}), maxAttempts: 1 });
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    let reason: unknown = null;
    try {
      // The maintenance leader, straight to the server: its rescuer.
      const leader = inProcessWorker({ handlers: [idle.handle(async () => {})], workerDeadAfterMs: 60_000, runScheduler: false });
      await leader.start();
      await waitUntil(() => leader.isLeader, { what: 'the first worker leads' });
      // The worker under test reaches the server only through the proxy.
      const w = inProcessWorker({
        connectionString: proxy.url(),
        runScheduler: false,
        handlers: [
          job.handle(
            (_p, ctx) =>
              new Promise<void>((_, reject) => {
                ctx.signal.addEventListener('abort', () => {
                  reason = ctx.signal.reason;
                  reject(ctx.signal.reason);
                });
              }),
          ),
        ],
      });
      await w.start();
      const id = await sluice.enqueue(job, {});
      await waitUntil(async () => (await sluice.getJob(id)).state === 'running', { what: 'the job running' });
      // A network blip: the worker's beats fail, its lease lapses, and the
      // rescuer sends the job, on its last attempt, to the dead jobs.
      proxy.cut();
      await waitUntil(async () => (await sluice.getJob(id)).state === 'dead', { timeoutMs: 20_000, what: 'the job dead by the rescuer' });
      const { rows } = await db.pool.query('SELECT reason FROM sluice.dead_jobs WHERE id = $1', [id]);
      expect(rows[0].reason).toBe('crashed');
      expect(reason).toBeNull();
      proxy.restore();
      await waitUntil(() => reason !== null, { timeoutMs: 20_000, what: "the handler's signal" });
      expect(reason).not.toBeInstanceOf(CancelledError);
      expect(reason).toBeInstanceOf(LeaseLostError);
      expect((await sluice.getJob(id)).state).toBe('dead');
    } finally {
      await Promise.all(workers.splice(0).map((x) => x.stop()));
      await proxy.close();
    }
  }, 60_000);
});

describe('a frozen LISTEN session', () => {
  it('a worker whose LISTEN session froze keeps its leases: the stuck beat is given up and beats go on elsewhere', async () => {
    const job = defineJob({ name: 'frozen.listen', queue: 'frozen-q', schema: z.object({}) });
    // The leader, on a direct connection: its rescuer takes any job whose lease lapsed.
    const other = defineJob({ name: 'frozen.other', queue: 'frozen-other', schema: z.object({}) });
    const leader = inProcessWorker({ handlers: [other.handle(async () => {})], workerDeadAfterMs: 3_000, runScheduler: false });
    await leader.start();
    await waitUntil(() => leader.isLeader, { what: 'the first worker leading' });

    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    let runs = 0;
    const w = inProcessWorker({
      listenConnectionString: proxy.url(),
      runScheduler: false,
      heartbeatIntervalMs: 200,
      workerDeadAfterMs: 3_000,
      concurrency: 1,
      handlers: [
        job.handle(async () => {
          runs += 1;
          // Twice the lease: it lapses unless beats keep extending it.
          await new Promise((r) => setTimeout(r, 6_000));
        }),
      ],
    });
    try {
      await w.start();
      const id = await sluice.enqueue(job, {});
      await waitUntil(() => runs === 1, { what: 'the job running' });
      proxy.freeze();
      const done = await completed(id, 'the job completed', 20_000);
      expect(done.attempt).toBe(1);
      expect(done.errors).toEqual([]);
      expect(runs).toBe(1);
    } finally {
      await proxy.close();
    }
  }, 40_000);

  // Closing a session given up as stuck looked, to the rescuer, like the death
  // of the process, 2 s after it saw the session end unless a beat came: on a
  // server slow enough to stick the session, the beat through the pool came
  // later, and a live worker's running job was rescued.
  it('a worker that gives up a stuck LISTEN session keeps it open until a beat through its pool lands: a slow beat does not get its running job rescued', async () => {
    const job = defineJob({ name: 'slowbeat.job', queue: 'slowbeat-q', schema: z.object({}) });
    const other = defineJob({ name: 'slowbeat.other', queue: 'slowbeat-other', schema: z.object({}) });
    // The leader, direct: its rescuer looks for ended sessions three times a second.
    const leader = inProcessWorker({ handlers: [other.handle(async () => {})], runScheduler: false });
    await leader.start();
    await waitUntil(() => leader.isLeader, { what: 'the first worker leading' });
    const listen = new CuttableProxy(new URL(db.url));
    const pool = new CuttableProxy(new URL(db.url));
    await Promise.all([listen.start(), pool.start()]);
    let runs = 0;
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const w = inProcessWorker({
      connectionString: pool.url(),
      listenConnectionString: listen.url(),
      runScheduler: false,
      // A stuck beat is given up after 7.5 s; the lease holds 16 s from the last beat that landed.
      heartbeatIntervalMs: 1_000,
      workerDeadAfterMs: 16_000,
      // No claims through the slow pool meanwhile: the beat is its only statement.
      pollIntervalMs: 60_000,
      concurrency: 1,
      handlers: [
        job.handle(async () => {
          runs += 1;
          await held;
        }),
      ],
    });
    try {
      await w.start();
      const id = await sluice.enqueue(job, {});
      await waitUntil(() => runs === 1, { what: 'the job running' });
      // The session's answers stop coming; the pool reaches the server 4 s late.
      const mutedAt = Date.now();
      listen.muteReplies();
      pool.slowClients(4_000);
      // A beat landing after the stuck one was given up (at most 8.5 s after the mute).
      await waitUntil(
        async () => {
          const { rows } = await db.pool.query(`SELECT heartbeat_at FROM sluice.workers WHERE id = $1`, [w.id]);
          return (rows[0].heartbeat_at as Date).getTime() > mutedAt + 8_500;
        },
        { timeoutMs: 25_000, what: 'a beat after the stuck one was given up' },
      );
      // Past the rescuer's grace for a session that ended: the job is still this worker's.
      await new Promise((r) => setTimeout(r, 3_000));
      const running = await sluice.getJob(id);
      expect([running.state, running.attempt]).toEqual(['running', 1]);
      pool.slowClients(0);
      release();
      const done = await completed(id, 'the job completed', 30_000);
      expect(done.attempt).toBe(1);
      expect(done.errors).toEqual([]);
      expect(runs).toBe(1);
    } finally {
      release();
      await Promise.all(workers.splice(0).map((x) => x.stop()));
      await Promise.all([listen.close(), pool.close()]);
    }
  }, 90_000);

  /**
   * A worker of one slot with its LISTEN session direct: job 1 runs and
   * holds, `frozen` freezes what it must, then job 1 is let go and job 2
   * enqueued. Both complete on their first attempt, in order.
   */
  async function bothComplete(
    queue: string,
    options: Partial<Parameters<typeof createWorker>[0]>,
    frozen: (w: Worker) => Promise<void>,
    started: (w: Worker) => Promise<unknown> = async () => {},
  ): Promise<Worker> {
    const job = defineJob({ name: `${queue}.job`, queue, schema: z.object({ n: z.number() }) });
    const ran: number[] = [];
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const w = inProcessWorker({
      listenConnectionString: db.url,
      runScheduler: false,
      heartbeatIntervalMs: 200,
      workerDeadAfterMs: 2_000,
      concurrency: 1,
      ...options,
      handlers: [
        job.handle(async ({ n }) => {
          ran.push(n);
          if (n === 1) await held;
        }),
      ],
    });
    await w.start();
    await started(w);
    const first = await sluice.enqueue(job, { n: 1 });
    await waitUntil(() => ran.length === 1, { what: 'the first job running' });
    await frozen(w);
    release();
    const second = await sluice.enqueue(job, { n: 2 });
    for (const id of [first, second]) {
      const done = await completed(id, `job ${id} completed`, 30_000);
      expect(done.attempt).toBe(1);
    }
    expect(ran).toEqual([1, 2]);
    return w;
  }

  it('a worker whose pool connections froze gives up their statements: its job completes, and it claims again', async () => {
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    try {
      // Claims and acknowledgements through the proxy: its acknowledgement,
      // and the claims the worker sends meanwhile, go into connections that
      // no longer answer.
      await bothComplete('frozen-pool-q', { connectionString: proxy.url() }, async () => proxy.freeze());
    } finally {
      await proxy.close();
    }
  }, 60_000);

  // A leader's duties each hold a connection while their statement waits: on
  // a silent pool, for a minute each. They took every connection of the pool,
  // and the acknowledgement and the next claim waited for one, unbounded.
  it("a leader whose duties took the pool's silent connections still acknowledges its job and claims the next", async () => {
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    // Two connections, both through the proxy, both open when it freezes.
    const pool = new pg.Pool({ connectionString: proxy.url(), max: 2 });
    pool.on('error', () => {});
    try {
      const options = {
        pool,
        // Alert checks ten times a second and rescues three: duties that meet the frozen connections at once.
        alertCheckIntervalMs: 100,
        // Its claims come of notifications (the LISTEN session is direct), not of a poll into the freeze.
        pollIntervalMs: 60_000,
      };
      const w = await bothComplete(
        'frozen-duties-q',
        options,
        async () => {
          await Promise.all([pool.query('SELECT pg_sleep(0.05)'), pool.query('SELECT pg_sleep(0.05)')]);
          expect(pool.totalCount).toBe(2);
          proxy.freeze();
          // Time for both duties to send a statement into the silence.
          await new Promise((r) => setTimeout(r, 1_500));
        },
        (leader) => waitUntil(() => leader.isLeader, { what: 'the worker leading' }),
      );
      // The alert check sent into the freeze still waits out its minute: the
      // stop closes its connection after a grace instead of waiting with it.
      const stopped = await Promise.race([w.stop().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 15_000))]);
      expect(stopped).toBe(true);
    } finally {
      await proxy.close();
      await Promise.all(workers.splice(0).map((x) => x.stop()));
      await pool.end().catch(() => {});
    }
  }, 90_000);
});

describe('graceful shutdown', () => {
  it('stop() of a follower whose LISTEN session froze ends (its stuck beat is cut when the session closes)', async () => {
    const job = defineJob({ name: 'rvs.job', queue: 'rvs-q', schema: z.object({}) });
    // The leader, on a direct connection, so the other worker is a follower.
    const other = defineJob({ name: 'rvs.other', queue: 'rvs-other', schema: z.object({}) });
    const leader = inProcessWorker({ handlers: [other.handle(async () => {})], workerDeadAfterMs: 60_000, runScheduler: false });
    await leader.start();
    await waitUntil(() => leader.isLeader, { what: 'the first worker leading' });

    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    const hold = { open: () => {} };
    const held = new Promise<void>((r) => (hold.open = r));
    let started = false;
    const w = inProcessWorker({
      listenConnectionString: proxy.url(),
      runScheduler: false,
      // A stuck beat is given up after a beat period here (worker/give-up.ts): long enough to stop inside it.
      heartbeatIntervalMs: 2_000,
      workerDeadAfterMs: 5_000,
      shutdownTimeoutMs: 2_000,
      concurrency: 1,
      handlers: [
        job.handle(async () => {
          started = true;
          await held;
        }),
      ],
    });
    let stopped: Promise<string> | null = null;
    try {
      await w.start();
      await sluice.enqueue(job, {});
      await waitUntil(() => started, { what: 'the job running' });
      proxy.freeze();
      // Its beats go on the LISTEN session: once heartbeat_at is older than
      // a beat period and a bit, a beat is stuck on the frozen session.
      await waitUntil(
        async () => {
          const { rows } = await db.pool.query<{ stale: boolean }>(
            `SELECT heartbeat_at < now() - interval '2500 milliseconds' AS stale FROM sluice.workers WHERE id = $1`,
            [w.id],
          );
          return rows[0]?.stale;
        },
        { what: 'the beat stuck on the frozen LISTEN session' },
      );
      stopped = w.stop().then(() => 'stopped');
      hold.open();
      const outcome = await Promise.race([stopped, new Promise<string>((r) => setTimeout(() => r('still stopping after 15 s'), 15_000))]);
      // The session closes before the heartbeat is awaited, which cuts the stuck beat.
      expect(outcome).toBe('stopped');
    } finally {
      hold.open();
      // Unblocks the stuck beat so the suite's own stop can end.
      await proxy.close();
      await stopped;
    }
  }, 40_000);

  it('releases buffered and unfinished jobs back to the queue at once and deregisters', async () => {
    const job = defineJob({ name: 'long', queue: 'sd', schema: z.object({}) });
    let started = 0;
    const w = inProcessWorker({
      concurrency: 2,
      prefetch: 4,
      shutdownTimeoutMs: 200,
      abortGraceMs: 10,
      handlers: [job.handle(() => { started++; return new Promise(() => {}); })],
    });
    const ids = await sluice.enqueueMany(job, Array.from({ length: 6 }, () => ({})));
    await w.start();
    await waitUntil(() => started === 2 && w.load.buffered === 4, { what: '2 running, 4 buffered' });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'sd' AND state = 'running'`)).toBe(6);
    await w.stop();
    const { rows } = await db.pool.query(`SELECT state, attempt, locked_by FROM sluice.jobs WHERE id = ANY($1::bigint[])`, [ids]);
    expect(rows).toHaveLength(6);
    expect(rows.every((r) => r.state === 'available' && r.attempt === 0 && r.locked_by === null)).toBe(true);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.workers WHERE id = $1', [w.id])).toBe(0);
  });

  it('an attempt that times out while the worker stops is recorded as a timed-out failure, not handed back', async () => {
    const job = defineJob({ name: 'times.out', queue: 'sd-to', schema: z.object({}), maxAttempts: 3, timeoutMs: 150, backoff: { kind: 'fixed', baseMs: 60_000, jitter: 0 } });
    let started = false;
    let timedOut = false;
    const w = inProcessWorker({
      // The timeout fires within the shutdown's wait for running jobs; the
      // handler, ignoring its signal, is still inside its abort grace when
      // that wait ends.
      shutdownTimeoutMs: 400,
      abortGraceMs: 1_000,
      handlers: [
        job.handle((_p, ctx) => {
          started = true;
          ctx.signal.addEventListener('abort', () => (timedOut = ctx.signal.reason instanceof TimeoutError));
          return new Promise(() => {});
        }),
      ],
    });
    await w.start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(() => started, { what: 'handler started' });
    await w.stop();
    expect(timedOut).toBe(true);
    const j = await sluice.getJob(id);
    expect(j).toMatchObject({ state: 'scheduled', attempt: 1 });
    expect(j.errors.map((e) => [e.attempt, e.kind, e.name])).toEqual([[1, 'timeout', 'TimeoutError']]);
    const { rows } = await db.pool.query(`SELECT sum(failed)::int AS failed, sum(retried)::int AS retried, sum(run_ms_sum)::int AS run_ms
      FROM sluice.metrics_minutely WHERE queue = 'sd-to'`);
    expect(rows[0].failed).toBe(1);
    expect(rows[0].retried).toBe(1);
    expect(rows[0].run_ms).toBeGreaterThanOrEqual(150);
  });

  // The LISTEN session once closed first, and the stop then waited for the
  // running jobs with no beat for up to 4 s: the leader's rescuer took the
  // closed session for a dead process and, after its 2 s grace, ended the
  // lease; the job ran again on another worker while the first still ran it.
  it('a worker stopping gracefully keeps the job it is finishing: its closed LISTEN session is not taken for a death', async () => {
    const idle = defineJob({ name: 'stop.idle', queue: 'sd-idle', schema: z.object({}) });
    const job = defineJob({ name: 'stop.finishing', queue: 'sd-finishing', schema: z.object({}), maxAttempts: 5 });
    const runs: string[] = [];
    const sleepOrAbort = (ms: number, signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });

    // The maintenance leader: its rescuer (every second, 2 s grace) is what is watched.
    const leader = inProcessWorker({ handlers: [idle.handle(async () => {})], workerDeadAfterMs: 60_000, runScheduler: false });
    await leader.start();
    await waitUntil(() => leader.isLeader, { what: 'the first worker leads' });

    // A follower that is stopped (a deploy's SIGTERM) while it runs an 8 s job.
    const stopping = inProcessWorker({
      concurrency: 1,
      workerDeadAfterMs: 60_000,
      heartbeatIntervalMs: 15_000,
      shutdownTimeoutMs: 30_000,
      runScheduler: false,
      handlers: [
        job.handle(async (_p, ctx) => {
          runs.push(`stopping:${ctx.job.attempt}`);
          await sleepOrAbort(8_000, ctx.signal);
        }),
      ],
    });
    await stopping.start();
    expect(stopping.isLeader).toBe(false);
    const id = await sluice.enqueue(job, {});
    await waitUntil(() => runs.length === 1, { what: 'the job started on the worker to stop' });

    // Another live worker of the queue, that would run the job again if it were rescued.
    const other = inProcessWorker({
      concurrency: 1,
      workerDeadAfterMs: 60_000,
      runScheduler: false,
      handlers: [job.handle(async (_p, ctx) => void runs.push(`other:${ctx.job.attempt}`))],
    });
    await other.start();

    // Stopped right after one of its beats on the LISTEN session (a
    // follower beats every 4 s), as any stop may fall.
    const beat = async () => {
      const { rows } = await db.pool.query<{ heartbeat_at: Date; session_pid: number | null }>(
        'SELECT heartbeat_at, session_pid FROM sluice.workers WHERE id = $1',
        [stopping.id],
      );
      return rows[0]!;
    };
    await waitUntil(async () => (await beat()).session_pid !== null, { what: 'the session recorded' });
    const last = (await beat()).heartbeat_at.getTime();
    await waitUntil(async () => (await beat()).heartbeat_at.getTime() !== last, { intervalMs: 5, what: 'a beat' });
    await stopping.stop();

    const end = await waitUntil(
      async () => {
        const j = await sluice.getJob(id);
        return j.state === 'completed' || runs.length > 1 ? j : null;
      },
      { timeoutMs: 30_000, what: 'the job completed, or run again' },
    );
    expect({ runs, state: end.state, attempt: end.attempt, errors: end.errors }).toEqual({
      runs: ['stopping:1'],
      state: 'completed',
      attempt: 1,
      errors: [],
    });
  }, 60_000);

  it('lets running jobs finish within shutdownTimeoutMs and writes their acknowledgements', async () => {
    const job = defineJob({ name: 'finishes', queue: 'sd2', schema: z.object({}) });
    let started = 0;
    const w = inProcessWorker({ concurrency: 3, handlers: [job.handle(async () => { started++; await new Promise((r) => setTimeout(r, 300)); })] });
    const ids = await sluice.enqueueMany(job, [{}, {}, {}]);
    await w.start();
    await waitUntil(() => started === 3, { what: 'all started' });
    await w.stop();
    for (const id of ids) expect((await sluice.getJob(id)).state).toBe('completed');
  });
});

describe('database faults', () => {
  it('an acknowledgement that committed but whose answer was lost is reported as applied when its retry finds it done, not as stale', async () => {
    // The leader, direct, so the worker under test runs no duty on the muted connections.
    const other = defineJob({ name: 'mute.other', queue: 'mute-other', schema: z.object({}) });
    const leader = inProcessWorker({ handlers: [other.handle(async () => {})], workerDeadAfterMs: 60_000, runScheduler: false });
    await leader.start();
    await waitUntil(() => leader.isLeader, { what: 'the first worker leading' });

    const done = defineJob({ name: 'mute.done', queue: 'mute', schema: z.object({}) });
    const retried = defineJob({ name: 'mute.retried', queue: 'mute', schema: z.object({}), maxAttempts: 3 });
    const dead = defineJob({ name: 'mute.dead', queue: 'mute', schema: z.object({}), maxAttempts: 1 });
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    // Claims and acknowledgements through the proxy, on connections opened
    // before the replies are muted; beats on the LISTEN session, direct.
    // Two: one for the completions, one for the failures, written side by side.
    const pool = new pg.Pool({ connectionString: proxy.url(), max: 20, idleTimeoutMillis: 0 });
    pool.on('error', () => {});
    await Promise.all(Array.from({ length: 2 }, () => pool.query('SELECT pg_sleep(0.05)')));
    const gate = { open: () => {} };
    const held = new Promise<void>((r) => (gate.open = r));
    let started = 0;
    const hold = async () => {
      started++;
      await held;
    };
    const logs = captureLogs('warn');
    const w = inProcessWorker({
      pool,
      logger: logs.logger,
      listenConnectionString: db.url,
      runScheduler: false,
      concurrency: 3,
      workerDeadAfterMs: 5_000,
      heartbeatIntervalMs: 500,
      handlers: [
        done.handle(hold),
        retried.handle(async () => {
          await hold();
          throw new Error('retried');
        }),
        dead.handle(async () => {
          await hold();
          throw new Error('dead');
        }),
      ],
    });
    const events: { id: number; attempt: number; result: string }[] = [];
    w.on('job', (e) => events.push({ id: e.id, attempt: e.attempt, result: e.result }));
    try {
      await w.start();
      const ids = [await sluice.enqueue(done, {}), await sluice.enqueue(retried, {}), await sluice.enqueue(dead, {})];
      await waitUntil(() => started === 3, { what: 'the three jobs running' });
      proxy.muteReplies();
      gate.open();
      // Each write commits; its answer never comes, and after the give-up
      // (10 s at least) the retry on a new connection finds nothing to apply.
      // The retried job runs again at once (attempt 2 and 3): only the first attempts are asked about.
      const firsts = () => events.filter((e) => e.attempt === 1);
      await waitUntil(() => firsts().length === 3, { what: 'the three acknowledgements reported', timeoutMs: 40_000 });
      expect(Object.fromEntries(firsts().map((e) => [e.id, e.result]))).toEqual({ [ids[0]!]: 'completed', [ids[1]!]: 'retry', [ids[2]!]: 'dead' });
      expect((await sluice.getJob(ids[0]!)).state).toBe('completed');
      expect((await sluice.getJob(ids[2]!)).state).toBe('dead');
      // Both writes were given up and retried: what the retries found is what is reported.
      expect(logs.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['writing completions failed; retrying', 'writing failures failed; retrying']));
      expect(logs.lines.filter((l) => String(l.msg).startsWith('late answer refused'))).toEqual([]);
    } finally {
      gate.open();
      await proxy.close();
    }
  }, 60_000);

  it('re-listens after its connections are terminated and still wakes on NOTIFY', async () => {
    const job = defineJob({ name: 'after.blip', queue: 'blip', schema: z.object({}) });
    let ran = 0;
    // A poll interval longer than the test: only a notification can wake it.
    const w = inProcessWorker({ pollIntervalMs: 600_000, handlers: [job.handle(() => void ran++)] });
    await w.start();
    // The LISTEN session also carries the worker's heartbeat (and its bid for leadership).
    const onListenSession = ON_LISTEN_SESSION;
    const listening = () => count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE datname = current_database() AND ${onListenSession}`);
    await waitUntil(async () => (await listening()) >= 1, { what: 'listener up' });
    await db.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${onListenSession}`);
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE datname = current_database() AND ${onListenSession} AND backend_start > now() - interval '10 s' AND state = 'idle'`)) >= 1, { what: 'listener back' });
    await sluice.enqueue(job, {});
    await waitUntil(() => ran === 1, { what: 'job ran after reconnect' });
  });

  it('stops claiming above maxRssBytes and leaves jobs in the queue', async () => {
    const job = defineJob({ name: 'mem', queue: 'mem', schema: z.object({}) });
    let ran = 0;
    // The job is there before the worker starts, so the worker's first look
    // for work (where it checks its memory and says so) has a job to take.
    const id = await sluice.enqueue(job, {});
    const logs = captureLogs('info');
    const w = inProcessWorker({ pollIntervalMs: 20, maxRssBytes: 16 * 1024 * 1024, logger: logs.logger, handlers: [job.handle(() => void ran++)] });
    await w.start();
    await waitUntil(() => logs.lines.some((l) => l.msg === 'memory above maxRssBytes: not claiming new jobs'), { what: 'refusal logged' });
    expect(ran).toBe(0);
    expect((await sluice.getJob(id)).state).toBe('available');
  });
});
