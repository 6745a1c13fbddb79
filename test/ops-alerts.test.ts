import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AlertWatcher, alertListActive, type AlertEvent } from '../packages/sluice/src/admin.js';
import { createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { alertStateSync } from '../packages/sluice/src/sql/alerts.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';

let db: TestDb;
const workers: Worker[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  // What one test's watchers reported firing is not the next test's to resolve.
  await q(`DELETE FROM sluice.alert_states`);
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
        if (config.name === 'sluice_alert_state_sync') evaluations++;
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

// Which alerts were reported firing is kept in sluice.alert_states, so the
// watcher of a new leader (after a rolling deploy stops the old one) carries
// on from its predecessor's reports instead of from nothing.
describe('alerts across a leader handover', () => {
  type Reported = AlertEvent & { by: string };
  const served = defineJob({ name: 'served', queue: 'served', schema: z.object({}) });
  const watchingWorker = (by: string, alertCheckIntervalMs: number, events: Reported[]): Worker => {
    const w = createWorker({ connectionString: db.url, handlers: [served.handle(async () => {})], alertCheckIntervalMs, pollIntervalMs: 200 });
    workers.push(w);
    w.on('alert', (e) => events.push({ ...e, by }));
    return w;
  };
  const reported = (events: Reported[], queue: string) => events.filter((e) => e.queue === queue).map((e) => `${e.by}:${e.state}`);

  it('an alert the old leader reported as firing is reported resolved once it clears after the new leader took over', async () => {
    const events: Reported[] = [];
    // Queues no worker here serves, over a depth threshold of 0 once a job is in them.
    await q(`INSERT INTO sluice.queues (name, alert_max_depth) VALUES ('backlog', 0), ('later', 0)`);
    await enqueue('backlog', 1);

    // The leader evaluates at once, then (like the 30 s default) not again for a while.
    const a = watchingWorker('a', 60_000, events);
    await a.start();
    expect(a.isLeader).toBe(true);
    await waitUntil(() => events.find((e) => e.queue === 'backlog' && e.state === 'firing'), { what: 'backlog firing' });
    const b = watchingWorker('b', 100, events);
    await b.start();
    expect(b.isLeader).toBe(false);

    // The backlog drains, then the leader is stopped: b takes over.
    await q(`DELETE FROM sluice.jobs WHERE queue = 'backlog'`);
    await a.stop();
    await waitUntil(() => b.isLeader, { what: 'b elected' });
    // b's watcher runs: it reports a new alert. Its first evaluation saw the backlog cleared, and
    // an evaluation reports all it finds before the next event loop turn.
    await enqueue('later', 1);
    await waitUntil(() => events.find((e) => e.queue === 'later' && e.by === 'b'), { what: "b's first report" });

    expect(reported(events, 'backlog')).toEqual(['a:firing', expect.stringMatching(/:resolved$/)]);
  });

  it('an alert still firing when the new leader takes over is not reported firing again, and is reported resolved once when it clears', async () => {
    const events: Reported[] = [];
    await q(`INSERT INTO sluice.queues (name, alert_max_depth) VALUES ('stuck', 0), ('fresh', 0)`);
    await enqueue('stuck', 1);
    const a = watchingWorker('a', 60_000, events);
    await a.start();
    expect(a.isLeader).toBe(true);
    await waitUntil(() => events.find((e) => e.queue === 'stuck' && e.state === 'firing'), { what: 'stuck firing' });
    const b = watchingWorker('b', 100, events);
    await b.start();

    await a.stop();
    await waitUntil(() => b.isLeader, { what: 'b elected' });
    // 'stuck' was active at each of b's evaluations, so the one that reports 'fresh' would have reported it too.
    await enqueue('fresh', 1);
    await waitUntil(() => events.find((e) => e.queue === 'fresh' && e.by === 'b'), { what: "b's first report" });
    expect(reported(events, 'stuck')).toEqual(['a:firing']);

    await q(`DELETE FROM sluice.jobs WHERE queue = 'stuck'`);
    await waitUntil(() => events.find((e) => e.queue === 'stuck' && e.state === 'resolved'), { what: 'stuck resolved' });
    expect(reported(events, 'stuck')).toEqual(['a:firing', 'b:resolved']);
    const { rows } = await q(`SELECT queue FROM sluice.alert_states WHERE queue IN ('stuck', 'fresh')`);
    expect(rows.map((r) => r.queue)).toEqual(['fresh']);
  });

  it('two watchers evaluating side by side report each change once between them', async () => {
    const events: Reported[] = [];
    const watchers = ['x', 'y'].map(
      (by) => new AlertWatcher(db.pool, { intervalMs: 20, workerDeadAfterMs: 15_000, onAlert: (e) => events.push({ ...e, by }) }, pino({ level: 'silent' })),
    );
    await q(`INSERT INTO sluice.queues (name, alert_max_depth) VALUES ('shared', 0)`);
    for (const w of watchers) w.start();
    try {
      for (let round = 0; round < 3; round++) {
        await enqueue('shared', 1);
        await waitUntil(() => watchers.every((w) => w.current.some((c) => c.queue === 'shared')), { what: 'both see it firing' });
        await q(`DELETE FROM sluice.jobs WHERE queue = 'shared'`);
        await waitUntil(() => watchers.every((w) => !w.current.some((c) => c.queue === 'shared')), { what: 'both see it cleared' });
      }
    } finally {
      await Promise.all(watchers.map((w) => w.stop()));
    }
    expect(reported(events, 'shared').map((r) => r.split(':')[1])).toEqual(['firing', 'resolved', 'firing', 'resolved', 'firing', 'resolved']);
  });

  it('an evaluation that overlaps one resolving an alert does not report it firing again', async () => {
    await q(`INSERT INTO sluice.queues (name, alert_max_depth) VALUES ('overlap', 0)`);
    await enqueue('overlap', 1);
    expect((await alertStateSync(db.pool, 15_000)).firing.map((a) => a.queue)).toContain('overlap');
    // One evaluation sees the queue drained and resolves the alert, and has not committed yet ...
    const resolver = await db.pool.connect();
    try {
      await resolver.query('BEGIN');
      await resolver.query(`DELETE FROM sluice.jobs WHERE queue = 'overlap'`);
      expect((await alertStateSync(resolver, 15_000)).resolved.map((a) => a.queue)).toEqual(['overlap']);
      // ... while another one starts, from before the drain.
      const other = alertStateSync(db.pool, 15_000);
      await waitUntil(
        async () => (await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%alert%'`)) > 0,
        { what: 'the other evaluation waiting' },
      );
      await resolver.query('COMMIT');
      const { firing, resolved } = await other;
      expect([...firing, ...resolved].filter((a) => a.queue === 'overlap')).toEqual([]);
    } finally {
      resolver.release();
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.alert_states WHERE queue = 'overlap'`)).toBe(0);
  });
});
