// A schedule whose job cannot be enqueued must not hold the others back, and
// a schedule fires its job into the job's own queue with its own retries.
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, defineJob } from '../packages/sluice/src/index.js';
import { cronRetryDelayMs } from '../packages/sluice/src/schedule.js';
import { count, waitUntil } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';
import { useSuite } from './helpers/suite.js';

const s = useSuite({ pollIntervalMs: 200 });

afterEach(async () => {
  await s.db.pool.query('DELETE FROM sluice.cron_schedules; DELETE FROM sluice.jobs; DELETE FROM sluice.job_history');
});

const tick = defineJob({ name: 'cf.tick', queue: 'cf.ok', schema: z.object({}) });
const toFull = defineJob({ name: 'cf.full', queue: 'cf.full', schema: z.object({}) });

interface FailureLog {
  schedule: string;
  failures: number;
  retryAt: string;
  time: number;
}

describe('a schedule that cannot enqueue', () => {
  it('records its error and backs off, while a healthy per-second schedule beside it fires every second', async () => {
    await s.sluice.queues.configure('cf.full', { maxDepth: 1, overflow: 'reject' });
    await s.sluice.enqueue(toFull, {});
    await s.sluice.schedules.add({ name: 'full', cron: '* * * * * *', job: toFull });
    // A row written by plain SQL with a payload over the 1 MiB enqueue limit.
    await new Sluice({ pool: s.db.pool, jobs: [defineJob({ name: 'cf.big', queue: 'cf.big', schema: z.unknown() })] }).registerJobs();
    await s.db.pool.query(
      `INSERT INTO sluice.cron_schedules (name, cron, job_name, payload) VALUES ('oversize', '* * * * * *', 'cf.big', jsonb_build_object('blob', repeat('x', 1100000)))`,
    );
    await s.sluice.schedules.add({ name: 'healthy', cron: '* * * * * *', job: tick });
    const { logger, lines } = captureLogs('info');
    let ticks = 0;
    await s.startWorker({ logger, handlers: [tick.handle(async () => void ticks++)] }).start();

    await waitUntil(() => ticks >= 8, { what: 'eight healthy fires', timeoutMs: 60_000 });
    const failing = await s.db.pool.query<{ name: string; last_error: string | null; fail_count: number; retry_at: Date | null }>(
      `SELECT name, last_error, fail_count, retry_at FROM sluice.cron_schedules WHERE name IN ('full', 'oversize') ORDER BY name`,
    );
    const [full, oversize] = failing.rows;
    expect(full!.last_error).toMatch(/QueueFullError/);
    expect(oversize!.last_error).toMatch(/payload/);
    for (const row of failing.rows) {
      expect(row.fail_count).toBeGreaterThanOrEqual(1);
      expect(row.retry_at).not.toBeNull();
    }
    // Nothing of the failing fires was written: the full queue still holds its one job.
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'cf.full'`)).toBe(1);
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.jobs WHERE name = 'cf.big'`)).toBe(0);

    // Each failure set a retry time by the backoff, and no attempt came before the previous one's retry time.
    for (const name of ['full', 'oversize']) {
      const tries = lines.filter((l) => l.schedule === name && /could not enqueue/.test(String(l.msg))) as unknown as FailureLog[];
      expect(tries.length).toBeGreaterThanOrEqual(1);
      tries.forEach((t, i) => {
        expect(t.failures).toBe(i + 1);
        expect(Date.parse(t.retryAt) - t.time).toBeGreaterThanOrEqual(cronRetryDelayMs(t.failures) - 1_000);
        if (i > 0) expect(t.time).toBeGreaterThanOrEqual(Date.parse(tries[i - 1]!.retryAt) - 50);
      });
    }
  });

  it('clears its error once a fire succeeds again', async () => {
    await s.sluice.queues.configure('cf.full', { maxDepth: 1, overflow: 'reject' });
    const blocker = await s.sluice.enqueue(toFull, {});
    await s.sluice.schedules.add({ name: 'recovers', cron: '* * * * * *', job: toFull });
    await s.startWorker({ handlers: [tick.handle(async () => {})] }).start();
    await waitUntil(async () => (await s.sluice.schedules.get('recovers')).lastError !== null, { what: 'a failed fire' });
    await s.sluice.cancel(blocker);
    const row = await waitUntil(async () => {
      const r = await s.sluice.schedules.get('recovers');
      return r.lastError === null && r.lastRunAt !== null ? r : null;
    }, { what: 'a fire after the queue had room', timeoutMs: 30_000 });
    expect(row.failCount).toBe(0);
    expect(row.retryAt).toBeNull();
  });
});

describe("a schedule's job options", () => {
  const accept = defineJob({
    name: 'cf.accept',
    queue: 'cf.accept_full',
    maxAttempts: 4,
    priority: 'high',
    timeoutMs: 5_000,
    schema: z.object({}),
  });

  it('built from a job definition, it enqueues into the definition\'s queue with its retries, though no worker registered the job', async () => {
    await s.sluice.schedules.add({ name: 'acc', cron: '* * * * * *', job: accept });
    // The worker runs the scheduler but neither handles nor registers cf.accept.
    await s.startWorker({ handlers: [tick.handle(async () => {})] }).start();
    await waitUntil(() => count(s.db.pool, `SELECT count(*) n FROM sluice.jobs WHERE name = 'cf.accept'`), { what: 'a fire' });
    const manual = await s.sluice.schedules.runNow('acc');
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.job_types WHERE name = 'cf.accept'`)).toBe(0);
    const { rows } = await s.db.pool.query(`SELECT id, queue, max_attempts, priority, timeout_ms FROM sluice.jobs WHERE name = 'cf.accept'`);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(rows.map((r) => Number(r.id))).toContain(manual);
    for (const r of rows) expect(r).toMatchObject({ queue: 'cf.accept_full', max_attempts: 4, priority: 10, timeout_ms: 5_000 });
  });

  it('added by job name, it takes sluice.job_types, and an unknown name is an UnknownJobError with nothing written', async () => {
    await expect(s.sluice.schedules.add({ name: 'byname', cron: '0 3 * * *', job: 'cf.nobody' })).rejects.toMatchObject({
      name: 'UnknownJobError',
      jobName: 'cf.nobody',
    });
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.cron_schedules`)).toBe(0);
    // As an application or a worker that knows the job does.
    await new Sluice({ pool: s.db.pool, jobs: [accept] }).registerJobs();
    await s.sluice.schedules.add({ name: 'byname', cron: '0 3 * * *', job: 'cf.accept' });
    const id = await s.sluice.schedules.runNow('byname');
    expect(await count(s.db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1 AND queue = 'cf.accept_full' AND max_attempts = 4`, [id])).toBe(1);
  });
});
