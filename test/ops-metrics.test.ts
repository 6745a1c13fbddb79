import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobDepth, queueLatency, queueStatsAll, workerStatus } from '../packages/sluice/src/admin.js';
import { createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);

/** Adds counters to one shard of a minute `minutesAgo` whole minutes before the current one. */
async function metric(queue: string, minutesAgo: number, shard: number, counts: Record<string, number>): Promise<void> {
  const cols = Object.keys(counts);
  await q(
    `INSERT INTO sluice.metrics_minutely (queue, minute, shard, ${cols.join(', ')})
     VALUES ($1, date_trunc('minute', now()) - $2 * interval '1 minute', $3, ${cols.map((_, i) => `$${i + 4}`).join(', ')})`,
    [queue, minutesAgo, shard, ...cols.map((c) => counts[c])],
  );
}

describe('metrics in SQL', () => {
  it('depth by queue, name and state is exact on a small table', async () => {
    await q(`SELECT sluice.enqueue_many('d.a', (SELECT jsonb_agg(g) FROM generate_series(1, 30) g), queue => 'depth1')`);
    await q(`SELECT sluice.enqueue('d.b', '{}', queue => 'depth1', run_at => now() + interval '1 hour')`);
    const rows = (await jobDepth(db.pool)).filter((r) => r.queue === 'depth1');
    expect(rows).toEqual([
      { queue: 'depth1', name: 'd.a', state: 'available', jobs: 30, estimated: false },
      { queue: 'depth1', name: 'd.b', state: 'scheduled', jobs: 1, estimated: false },
    ]);
  });

  it('above the threshold, waiting states come from planner statistics and running jobs are counted', async () => {
    await q(`SELECT sluice.enqueue_many('e.a', (SELECT jsonb_agg(g) FROM generate_series(1, 2000) g), queue => 'est')`);
    await q(`SELECT sluice.enqueue_many('e.b', (SELECT jsonb_agg(g) FROM generate_series(1, 500) g), queue => 'est', run_at => now() + interval '1 hour')`);
    // Claim 7 by hand, as a worker would.
    await q(`UPDATE sluice.jobs SET state = 'running', locked_by = 'w-test', locked_until = now() + interval '1 min', attempt = 1
             WHERE id IN (SELECT id FROM sluice.jobs WHERE name = 'e.a' ORDER BY id LIMIT 7)`);
    await q('ANALYZE sluice.jobs');
    const rows = (await jobDepth(db.pool, 100)).filter((r) => r.queue === 'est');
    const get = (name: string, state: string) => rows.find((r) => r.name === name && r.state === state);
    expect(get('e.a', 'running')).toEqual({ queue: 'est', name: 'e.a', state: 'running', jobs: 7, estimated: false });
    // ANALYZE samples every row of a table this small, so the estimate is the count.
    expect(get('e.a', 'available')).toMatchObject({ jobs: 1993, estimated: true });
    expect(get('e.b', 'scheduled')).toMatchObject({ jobs: 500, estimated: true });
    // The same call under the threshold counts.
    const exact = (await jobDepth(db.pool, 1_000_000)).filter((r) => r.queue === 'est');
    expect(exact.every((r) => !r.estimated)).toBe(true);
  });

  it('oldest waiting age covers available jobs across priorities and overdue scheduled ones', async () => {
    await q(`SELECT sluice.enqueue('o.a', '{}', queue => 'old', priority => 5)`);
    await q(`SELECT sluice.enqueue('o.a', '{}', queue => 'old', priority => -3)`);
    await q(`UPDATE sluice.jobs SET run_at = now() - interval '90 seconds' WHERE queue = 'old' AND priority = -3`);
    let [stats] = await queueStatsAll(db.pool, 'old');
    expect(stats!.oldestWaitSeconds).toBeGreaterThanOrEqual(90);
    expect(stats!.oldestWaitSeconds).toBeLessThan(120);
    // A scheduled job whose time came but that no promoter moved yet also waits.
    await q(`SELECT sluice.enqueue('o.a', '{}', queue => 'old', run_at => now() + interval '1 hour')`);
    await q(`UPDATE sluice.jobs SET run_at = now() - interval '10 minutes' WHERE queue = 'old' AND state = 'scheduled'`);
    [stats] = await queueStatsAll(db.pool, 'old');
    expect(stats!.oldestWaitSeconds).toBeGreaterThanOrEqual(600);
    const empty = await queueStatsAll(db.pool, 'depth1');
    expect(empty[0]!.oldestWaitSeconds).toBeGreaterThanOrEqual(0);
  });

  it('throughput over 1/5/15 minutes and error rate add up every shard', async () => {
    await q(`INSERT INTO sluice.queues (name) VALUES ('tp')`);
    await metric('tp', 0, 1, { completed: 40, failed: 5, wait_ms_sum: 900, wait_ms_max: 70, run_ms_sum: 450, run_ms_max: 30 });
    await metric('tp', 0, 2, { completed: 20, failed: 5, wait_ms_sum: 500, wait_ms_max: 90, run_ms_sum: 250, run_ms_max: 20 });
    await metric('tp', 3, 1, { completed: 100, failed: 0, retried: 4, dead: 1 });
    await metric('tp', 10, 9, { completed: 1000 });
    await metric('tp', 30, 1, { completed: 99999 });
    const { rows } = await q(`SELECT * FROM sluice.queue_throughput WHERE queue = 'tp'`);
    const t = rows[0];
    expect(Number(t.completed_1m)).toBe(60);
    expect(Number(t.completed_5m)).toBe(160);
    expect(Number(t.completed_15m)).toBe(1160);
    expect(Number(t.failed_5m)).toBe(10);
    expect(Number(t.retried_5m)).toBe(4);
    expect(Number(t.dead_5m)).toBe(1);
    expect(t.error_rate_5m).toBeCloseTo(10 / 170, 6);
    expect(t.wait_ms_avg_5m).toBeCloseTo(1400 / 170, 6);
    expect(Number(t.wait_ms_max_5m)).toBe(90);
    // A rate divides by the span of its window: between 1 and 2 minutes for "1m".
    expect(t.completed_per_s_1m).toBeGreaterThan(60 / 120);
    expect(t.completed_per_s_1m).toBeLessThanOrEqual(60 / 60);
    const [stats] = await queueStatsAll(db.pool, 'tp');
    expect(stats).toMatchObject({ completed1m: 60, completed5m: 160, completed15m: 1160, failed5m: 10 });
    expect(stats!.errorRate5m).toBeCloseTo(10 / 170, 6);
    const { rows: byMinute } = await q(`SELECT * FROM sluice.metrics_by_minute WHERE queue = 'tp' ORDER BY minute DESC LIMIT 1`);
    expect(Number(byMinute[0].completed)).toBe(60);
    expect(byMinute[0].run_ms_avg).toBeCloseTo(700 / 70, 6);
  });

  it('wait and run averages are over the attempts that measured them, not over rescued ones', async () => {
    // Three jobs claimed by hand, due 10 s ago: one completes after 100 ms of
    // running, one fails after 300 ms, one is lost with its worker (its
    // lease lapses) and is rescued. A rescue knows neither a run time nor
    // when the handler started.
    // All in one minute, so that the per-minute row can be read whole.
    const { rows: clock } = await q(`SELECT extract(second FROM clock_timestamp())::float8 AS s`);
    if (clock[0].s > 55) await new Promise((r) => setTimeout(r, (61 - clock[0].s) * 1000));
    const enqueue = () => q(`SELECT sluice.enqueue('avg.j', '{}', queue => 'avg') AS id`).then((r) => Number(r.rows[0].id));
    const [done, failed, lost] = [await enqueue(), await enqueue(), await enqueue()];
    await q(`UPDATE sluice.jobs SET state = 'running', locked_by = 'w-avg', locked_until = now() + interval '1 min', attempt = 1,
             attempted_at = now(), run_at = now() - interval '10 seconds' WHERE queue = 'avg'`);
    await q(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1], run_ms => ARRAY[100])`, [done]);
    await q(`SELECT * FROM sluice.job_fail_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"kind":"error"}'::jsonb], ARRAY[false], run_ms => ARRAY[300])`, [failed]);
    await q(`UPDATE sluice.jobs SET locked_until = now() - interval '1 second' WHERE id = $1`, [lost]);
    const { rows: rescued } = await q(`SELECT * FROM sluice.rescue_expired()`);
    expect(rescued.map((r) => [Number(r.id), r.outcome])).toEqual([[lost, 'rescued']]);

    const { rows: sums } = await q(`SELECT sum(completed)::int AS completed, sum(failed)::int AS failed,
      sum(wait_ms_sum)::float8 AS wait_ms_sum, sum(run_ms_sum)::float8 AS run_ms_sum FROM sluice.metrics_by_minute WHERE queue = 'avg'`);
    // The rescue still counts as a failed attempt (docs/design-notes.md).
    expect(sums[0]).toMatchObject({ completed: 1, failed: 2, run_ms_sum: 400 });
    const [stats] = await queueStatsAll(db.pool, 'avg');
    expect(stats!.errorRate5m).toBeCloseTo(2 / 3, 6);
    expect(stats!.runMsAvg5m).toBeCloseTo(400 / 2, 6);
    expect(stats!.waitMsAvg5m).toBeCloseTo(sums[0].wait_ms_sum / 2, 6);
    expect(stats!.waitMsAvg5m).toBeGreaterThan(9_500);
    const { rows: byMinute } = await q(`SELECT run_ms_avg, wait_ms_avg, wait_ms_sum::float8 AS wait_ms_sum FROM sluice.metrics_by_minute WHERE queue = 'avg'`);
    expect(byMinute).toHaveLength(1);
    expect(byMinute[0].run_ms_avg).toBeCloseTo(400 / 2, 6);
    expect(byMinute[0].wait_ms_avg).toBeCloseTo(byMinute[0].wait_ms_sum / 2, 6);

    // A window in which only rescues ended has no average and no maximum (not 0).
    await q(`INSERT INTO sluice.queues (name) VALUES ('avg-lost')`);
    await q(`SELECT sluice.enqueue('avg.l', '{}', queue => 'avg-lost')`);
    await q(`UPDATE sluice.jobs SET state = 'running', locked_by = 'w-avg', locked_until = now() - interval '1 second', attempt = 1,
             attempted_at = now() WHERE queue = 'avg-lost'`);
    await q(`SELECT * FROM sluice.rescue_expired()`);
    const [onlyLost] = await queueStatsAll(db.pool, 'avg-lost');
    expect(onlyLost).toMatchObject({ failed5m: 1, waitMsAvg5m: null, waitMsMax5m: null, runMsAvg5m: null, runMsMax5m: null });
  });

  it('error rate is null, not zero, when nothing finished', async () => {
    await q(`INSERT INTO sluice.queues (name) VALUES ('idle')`);
    const [stats] = await queueStatsAll(db.pool, 'idle');
    expect(stats!.errorRate5m).toBeNull();
    expect(stats!.completedPerS5m).toBe(0);
  });

  it('workers alive: a recent heartbeat counts, a stale one does not', async () => {
    await q(`INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at)
             VALUES ('w-live', 'h', 1, '{wq}', 4, 't', now()), ('w-stale', 'h', 2, '{wq}', 4, 't', now() - interval '1 minute')`);
    const all = await workerStatus(db.pool, 15_000);
    expect(all.filter((w) => w.id.startsWith('w-')).map((w) => [w.id, w.alive])).toEqual([
      ['w-live', true],
      ['w-stale', false],
    ]);
    await q(`INSERT INTO sluice.queues (name) VALUES ('wq')`);
    const [stats] = await queueStatsAll(db.pool, 'wq');
    expect(stats!.workersAlive).toBe(1);
    const { rows } = await q(`SELECT id FROM sluice.workers_alive WHERE id LIKE 'w-%'`);
    expect(rows.map((r) => r.id)).toEqual(['w-live']);
  });

  it('latency percentiles come from the latest completions in history', async () => {
    await q(`INSERT INTO sluice.queues (name) VALUES ('lat')`);
    // 100 completed jobs waiting k ms and running 2k ms, k = 1..100.
    await q(`INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, created_at, run_at, attempted_at, finished_at)
             SELECT 900000 + k, 'lat', 'l', '{}', 0, 1, 1, 'completed', now(), now() - interval '1 minute',
                    now() - interval '1 minute' + k * interval '1 ms', now() - interval '1 minute' + 3 * k * interval '1 ms'
             FROM generate_series(1, 100) k`);
    const [lat] = (await queueLatency(db.pool)).filter((l) => l.queue === 'lat');
    expect(lat!.samples).toBe(100);
    expect(lat!.waitMsP50).toBeCloseTo(50.5, 3);
    expect(lat!.waitMsP95).toBeCloseTo(95.05, 3);
    expect(lat!.runMsP50).toBeCloseTo(101, 3);
    const [few] = (await queueLatency(db.pool, 10)).filter((l) => l.queue === 'lat');
    expect(few!.samples).toBe(10);
  });
});
