// A worker claims ahead of its slots (the prefetch): when it dies, the jobs
// it held without starting them lose nothing by it. Its beats mark them
// (sluice.extend_leases), and the rescue gives their attempt back
// (sluice.rescue_expired): without that, a crash spent an attempt of every
// buffered job, and sent a one-attempt job to the dead jobs unrun.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { jobClaim, jobReleaseMany } from '../packages/sluice/src/sql/job-leases.js';
import { workerHeartbeat } from '../packages/sluice/src/sql/workers.js';
import { ClaimWatchingPool } from './helpers/claims.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

async function enqueue(queue: string, maxAttempts: number): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('rescue.unstarted', '{}', queue => $1, max_attempts => $2) AS id`, [queue, maxAttempts]);
  return Number(rows[0]!.id);
}

async function claim(queue: string, workerId: string, n: number) {
  const jobs = await jobClaim(db.pool, { queues: [queue], limits: [n], workerId, leaseMs: 60_000 });
  expect(jobs).toHaveLength(n);
  return jobs;
}

/** The worker is gone: its leases lapse, and the rescuer runs. */
async function lapseAndRescue(ids: number[]): Promise<Map<number, string>> {
  await db.pool.query(`UPDATE sluice.jobs SET locked_until = now() - interval '1 second' WHERE id = ANY($1::bigint[])`, [ids]);
  const { rows } = await db.pool.query<{ id: string; outcome: string }>('SELECT id, outcome FROM sluice.rescue_expired(1000)');
  return new Map(rows.map((r) => [Number(r.id), r.outcome]));
}

async function row(id: number) {
  const { rows } = await db.pool.query<{ state: string; attempt: number; errors: { unstarted?: boolean; kind: string; attempt: number }[] }>(
    'SELECT state, attempt, errors FROM sluice.jobs WHERE id = $1',
    [id],
  );
  return rows[0];
}

const failedMetric = (queue: string) => count(db.pool, 'SELECT coalesce(sum(failed), 0) n FROM sluice.metrics_minutely WHERE queue = $1', [queue]);

describe('the rescue of a lost worker', () => {
  it('gives back the attempt of jobs its last beat found claimed and not started, and counts the one it ran', async () => {
    const queue = 'unstarted.basic';
    const ids = [await enqueue(queue, 1), await enqueue(queue, 1), await enqueue(queue, 1)];
    const [running, ...buffered] = await claim(queue, 'w-dies', 3);
    await workerHeartbeat(db.pool, 'w-dies', 60_000, ids, [queue], buffered.map((j) => j.id));
    const outcome = await lapseAndRescue(ids);

    // The job that was running used its only attempt: dead, as before.
    expect(outcome.get(running!.id)).toBe('dead');
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [running!.id])).toBe(1);
    // The two buffered ones never ran: back in the queue with no attempt spent.
    for (const j of buffered) {
      expect(outcome.get(j.id)).toBe('rescued');
      const r = await row(j.id);
      expect(r).toMatchObject({ state: 'available', attempt: 0 });
      expect(r!.errors).toEqual([expect.objectContaining({ kind: 'crash', name: 'WorkerLostError', attempt: 1, unstarted: true })]);
    }
    // Only the run that failed counts as a failure.
    expect(await failedMetric(queue)).toBe(1);
  });

  it('a job it started after the beat that found it buffered, killing its worker each time, still uses up its attempts (every other rescue)', async () => {
    const queue = 'unstarted.poison';
    const id = await enqueue(queue, 2);
    const attempts: number[] = [];
    for (let round = 0; round < 4; round++) {
      const [j] = await claim(queue, `w-poison-${round}`, 1);
      // The beat saw it buffered; it started right after and took its process down.
      await workerHeartbeat(db.pool, `w-poison-${round}`, 60_000, [id], [queue], [id]);
      const outcome = await lapseAndRescue([id]);
      attempts.push(j!.attempt);
      if (outcome.get(id) === 'dead') break;
    }
    // Given back, counted, given back, counted: dead after its two attempts, in four crashes.
    expect(attempts).toEqual([1, 1, 2, 2]);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [id])).toBe(1);
  });

  it('a mark from an earlier claim gives nothing back: the job claimed again and lost before a beat counts the attempt', async () => {
    const queue = 'unstarted.stale';
    const id = await enqueue(queue, 3);
    const [first] = await claim(queue, 'w-first', 1);
    await workerHeartbeat(db.pool, 'w-first', 60_000, [id], [queue], [id]);
    // Handed back (a paused queue, a stop), then claimed again by another worker that dies before it beats.
    expect(await jobReleaseMany(db.pool, { ids: [id], attempts: [first!.attempt], leases: [first!.lease], workerId: 'w-first' })).toBe(1);
    const [second] = await claim(queue, 'w-second', 1);
    expect(second!.attempt).toBe(1);
    await lapseAndRescue([id]);
    const r = await row(id);
    expect(r).toMatchObject({ state: 'available', attempt: 1 });
    expect(r!.errors).toEqual([expect.not.objectContaining({ unstarted: true })]);
  });

  it('a beat that reports a job started (or a worker that reports none) leaves the crash counted', async () => {
    const queue = 'unstarted.started';
    const ids = [await enqueue(queue, 3), await enqueue(queue, 3)];
    await claim(queue, 'w-started', 2);
    // First beat: both buffered; the next: both started.
    await workerHeartbeat(db.pool, 'w-started', 60_000, ids, [queue], ids);
    await workerHeartbeat(db.pool, 'w-started', 60_000, ids, [queue], []);
    await lapseAndRescue(ids);
    for (const id of ids) expect(await row(id)).toMatchObject({ state: 'available', attempt: 1 });
    expect(await failedMetric(queue)).toBe(2);
  });
});

describe('a claim whose answer is lost', () => {
  // Committed on the server, its answer lost with the connection: the jobs
  // ran under the worker's id with nothing in the worker to run them, and at
  // the lease's end the rescuer counted a crash; a one-attempt job went to
  // the dead jobs without ever running.
  it('a live worker gives the jobs back, attempt and all: a one-attempt job still runs, once', async () => {
    const job = defineJob({ name: 'rescue.lost-answer', queue: 'lost-answer', schema: z.object({}), maxAttempts: 1 });
    const pool = new ClaimWatchingPool(db.url);
    const sluice = new Sluice({ pool: db.pool });
    const ran: number[] = [];
    const w = createWorker({
      pool,
      handlers: [job.handle((_, ctx) => void ran.push(ctx.job.id))],
      pollIntervalMs: 100,
      workerDeadAfterMs: 2_000,
      logger: pino({ level: 'silent' }),
    });
    try {
      const lost = pool.loseNextClaimAnswer();
      await w.start();
      const id = await sluice.enqueue(job, {});
      await lost;
      const end = await waitUntil(
        async () => {
          const j = await sluice.getJob(id);
          return j.state === 'completed' || j.state === 'dead' ? j : null;
        },
        { timeoutMs: 15_000, what: 'the job ended' },
      );
      expect([end.state, end.attempt]).toEqual(['completed', 1]);
      expect(ran).toEqual([id]);
    } finally {
      await w.stop();
      await pool.end();
      await sluice.close();
    }
  });
});
