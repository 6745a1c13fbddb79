import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AlertWatcher, alertListActive, type AlertEvent } from '../packages/sluice/src/admin.js';
import { createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';

let db: TestDb;
const workers: Worker[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);
const enqueue = (queue: string, n: number) =>
  q(`SELECT sluice.enqueue_many('a.job', (SELECT jsonb_agg(g) FROM generate_series(1, $2::int) g), queue => $1)`, [queue, n]);

describe('alerts evaluated in SQL', () => {
  it('no threshold set, no alert, however deep the queue', async () => {
    await enqueue('calm', 50);
    expect((await alertListActive(db.pool, 15_000)).filter((a) => a.queue === 'calm')).toEqual([]);
  });

  it('depth, wait, error rate and no worker each fire past their threshold only', async () => {
    await enqueue('hot', 5);
    await q(`UPDATE sluice.jobs SET run_at = now() - interval '2 minutes' WHERE queue = 'hot'`);
    // Shard 64: no backend's (enqueue counts into shard pid % 64, so any lower one may already exist this minute).
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed, failed) VALUES ('hot', date_trunc('minute', now()), 64, 6, 4)`);
    await q(`UPDATE sluice.queues SET alert_max_depth = 5, alert_max_wait_ms = 600000, alert_max_error_rate = 0.5 WHERE name = 'hot'`);
    expect(await alertListActive(db.pool, 15_000)).toEqual([]);
    await q(`UPDATE sluice.queues SET alert_max_depth = 4, alert_max_wait_ms = 60000, alert_max_error_rate = 0.3, alert_no_worker = true WHERE name = 'hot'`);
    const alerts = await alertListActive(db.pool, 15_000);
    expect(alerts.map((a) => [a.queue, a.alert, a.threshold])).toEqual([
      ['hot', 'depth', 4],
      ['hot', 'error_rate', 0.3],
      ['hot', 'no_worker', 1],
      ['hot', 'wait', 60000],
    ]);
    expect(alerts.find((a) => a.alert === 'depth')!.value).toBe(5);
    expect(alerts.find((a) => a.alert === 'error_rate')!.value).toBeCloseTo(0.4, 6);
    expect(alerts.find((a) => a.alert === 'wait')!.value).toBeGreaterThanOrEqual(120_000);
    expect(alerts.find((a) => a.alert === 'depth')!.message).toBe('queue hot: 5 jobs waiting, over 4');
    // A live worker serving the queue clears no_worker; one serving another queue does not.
    await q(`INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version) VALUES ('w-other', 'h', 1, '{elsewhere}', 1, 't')`);
    expect((await alertListActive(db.pool, 15_000)).some((a) => a.alert === 'no_worker')).toBe(true);
    await q(`INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version) VALUES ('w-hot', 'h', 1, '{hot}', 1, 't')`);
    expect((await alertListActive(db.pool, 15_000)).some((a) => a.alert === 'no_worker')).toBe(false);
    const { rows } = await q(`SELECT alert FROM sluice.active_alerts WHERE queue = 'hot' ORDER BY alert`);
    expect(rows.map((r) => r.alert)).toEqual(['depth', 'error_rate', 'wait']);
    await q(`UPDATE sluice.queues SET alert_max_depth = NULL, alert_max_wait_ms = NULL, alert_max_error_rate = NULL, alert_no_worker = false WHERE name = 'hot'`);
  });

  it('the watcher reports an alert once when it fires and once when it clears, with a warning log', async () => {
    const { logger, lines } = captureLogs();
    const events: AlertEvent[] = [];
    let evaluations = 0;
    const counted = {
      query: (config: { name?: string; text: string; values?: unknown[] }) => {
        if (config.name === 'sluice_alert_list_active') evaluations++;
        return db.pool.query(config);
      },
    };
    const watcher = new AlertWatcher(counted, { intervalMs: 50, workerDeadAfterMs: 15_000, onAlert: (e) => events.push(e) }, logger);
    await enqueue('watched', 3);
    watcher.start();
    try {
      await q(`UPDATE sluice.queues SET alert_max_depth = 2 WHERE name = 'watched'`);
      await waitUntil(() => events.length === 1, { what: 'firing event' });
      expect(events[0]).toMatchObject({ queue: 'watched', alert: 'depth', state: 'firing', value: 3, threshold: 2 });
      const warn = lines.find((l) => l.level === 40 && l.queue === 'watched');
      expect(warn).toMatchObject({ alert: 'depth', msg: 'queue watched: 3 jobs waiting, over 2' });
      // Several more evaluations while it stays active report nothing new.
      const seen = evaluations;
      await waitUntil(() => evaluations >= seen + 3, { what: 'three more evaluations' });
      expect(events).toHaveLength(1);
      expect(watcher.current.map((a) => a.alert)).toEqual(['depth']);
      await q(`DELETE FROM sluice.jobs WHERE queue = 'watched'`);
      await waitUntil(() => events.length === 2, { what: 'resolved event' });
      expect(events[1]).toMatchObject({ queue: 'watched', alert: 'depth', state: 'resolved' });
      expect(events.filter((e) => e.state === 'firing')).toHaveLength(1);
    } finally {
      await watcher.stop();
      await q(`UPDATE sluice.queues SET alert_max_depth = NULL WHERE name = 'watched'`);
    }
  });

  it('a worker emits alert events and logs them as warnings', async () => {
    const { logger, lines } = captureLogs();
    const job = defineJob({ name: 'served', queue: 'served', schema: z.object({}) });
    await q(`INSERT INTO sluice.queues (name, alert_no_worker) VALUES ('orphan', true)`);
    const w = createWorker({ connectionString: db.url, handlers: [job.handle(async () => {})], logger, alertCheckIntervalMs: 100, pollIntervalMs: 200 });
    workers.push(w);
    const events: AlertEvent[] = [];
    w.on('alert', (e) => events.push(e));
    await w.start();
    await waitUntil(() => events.find((e) => e.queue === 'orphan'), { what: 'no_worker alert' });
    expect(events.find((e) => e.queue === 'orphan')).toMatchObject({ alert: 'no_worker', state: 'firing' });
    expect(lines.some((l) => l.level === 40 && l.queue === 'orphan' && l.alert === 'no_worker')).toBe(true);
    // The worker's own queue is served: no alert for it.
    await q(`UPDATE sluice.queues SET alert_no_worker = true WHERE name = 'served'`);
    await q(`UPDATE sluice.queues SET alert_no_worker = false WHERE name = 'orphan'`);
    await waitUntil(() => events.find((e) => e.queue === 'orphan' && e.state === 'resolved'), { what: 'resolved' });
    expect(events.some((e) => e.queue === 'served')).toBe(false);
  });

  it('rejects a bad alertCheckIntervalMs naming the option', () => {
    const job = defineJob({ name: 'x', queue: 'x', schema: z.object({}) });
    expect(() => createWorker({ connectionString: db.url, handlers: [job.handle(async () => {})], alertCheckIntervalMs: -1 })).toThrow(/createWorker\.alertCheckIntervalMs/);
    expect(() => createWorker({ connectionString: db.url, handlers: [job.handle(async () => {})], metricsPort: 70000 })).toThrow(/createWorker\.metricsPort/);
  });
});
