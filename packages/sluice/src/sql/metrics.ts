// Runtime SQL for metrics and inspection: depth (estimated on big tables),
// throughput, latency and workers, as read by `sluice stats`, Prometheus and
// the HTTP API. Views and functions live in drizzle/functions/ (queues/, metrics/, workers/).
import { WORKER_DEAD_AFTER_MS_DEFAULT } from '../config.js';
import type { Queryable } from '../executor.js';
import type { WorkerRow } from './workers.js';

/** One row of sluice.queue_stats. Counts arrive as numbers; a missing rate is null. */
export interface QueueStats {
  queue: string;
  paused: boolean;
  scheduled: number;
  available: number;
  running: number;
  waiting: number;
  dead: number;
  /** True when some counts of this queue come from planner statistics. */
  estimated: boolean;
  oldestWaitSeconds: number | null;
  workersAlive: number;
  completed1m: number;
  completed5m: number;
  completed15m: number;
  failed5m: number;
  retried5m: number;
  dead5m: number;
  completedPerS1m: number;
  completedPerS5m: number;
  completedPerS15m: number;
  errorRate5m: number | null;
  waitMsAvg5m: number | null;
  waitMsMax5m: number | null;
  runMsAvg5m: number | null;
  runMsMax5m: number | null;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * The rows of sluice.queue_stats (one queue's when `queue` is given), with
 * workers alive counted against `deadAfterMs`: the view's own column keeps
 * worker_status()'s 15 s default, which would contradict a caller's
 * threshold (its no_worker alert, its workers page).
 */
export async function queueStatsAll(
  db: Queryable,
  queue: string | null = null,
  deadAfterMs: number = WORKER_DEAD_AFTER_MS_DEFAULT,
): Promise<QueueStats[]> {
  const { rows } = await db.query<Record<string, unknown>>({
    name: 'sluice_queue_stats_all',
    text: `WITH w AS (
             SELECT u.queue, count(*) AS workers
             FROM sluice.worker_status($2::integer) a, unnest(a.queues) AS u(queue) WHERE a.alive GROUP BY u.queue
           )
           SELECT s.*, coalesce(w.workers, 0)::bigint AS workers_alive_within
           FROM sluice.queue_stats s LEFT JOIN w ON w.queue = s.queue
           WHERE $1::text IS NULL OR s.queue = $1 ORDER BY s.queue`,
    values: [queue, deadAfterMs],
  });
  return rows.map((r) => ({
    queue: r.queue as string,
    paused: r.paused as boolean,
    scheduled: num(r.scheduled),
    available: num(r.available),
    running: num(r.running),
    waiting: num(r.waiting),
    dead: num(r.dead),
    estimated: r.estimated as boolean,
    oldestWaitSeconds: numOrNull(r.oldest_wait_seconds),
    workersAlive: num(r.workers_alive_within),
    completed1m: num(r.completed_1m),
    completed5m: num(r.completed_5m),
    completed15m: num(r.completed_15m),
    failed5m: num(r.failed_5m),
    retried5m: num(r.retried_5m),
    dead5m: num(r.dead_5m),
    completedPerS1m: num(r.completed_per_s_1m),
    completedPerS5m: num(r.completed_per_s_5m),
    completedPerS15m: num(r.completed_per_s_15m),
    errorRate5m: numOrNull(r.error_rate_5m),
    waitMsAvg5m: numOrNull(r.wait_ms_avg_5m),
    waitMsMax5m: numOrNull(r.wait_ms_max_5m),
    runMsAvg5m: numOrNull(r.run_ms_avg_5m),
    runMsMax5m: numOrNull(r.run_ms_max_5m),
  }));
}

export interface JobDepth {
  queue: string;
  name: string;
  state: string;
  jobs: number;
  estimated: boolean;
}

/** Jobs per queue, name and state (dead included); see sluice.job_depth. */
export async function jobDepth(db: Queryable, exactBelow = 100_000): Promise<JobDepth[]> {
  const { rows } = await db.query<{ queue: string; name: string; state: string; jobs: string; estimated: boolean }>({
    name: 'sluice_job_depth',
    text: `SELECT queue, name, state, jobs, estimated FROM sluice.job_depth($1) ORDER BY queue, name, state`,
    values: [exactBelow],
  });
  return rows.map((r) => ({ ...r, jobs: Number(r.jobs) }));
}

export interface MinuteCounts {
  queue: string;
  event: 'enqueued' | 'completed' | 'failed' | 'retried' | 'dead' | 'cancelled';
  window: '1m' | '5m' | '15m';
  perSecond: number;
}

/** Per-second rates of every counter over the 1, 5 and 15 minute windows of sluice.queue_throughput. */
export async function queueEventRates(db: Queryable): Promise<MinuteCounts[]> {
  const { rows } = await db.query<{ queue: string; event: MinuteCounts['event']; win: MinuteCounts['window']; per_s: number }>({
    name: 'sluice_queue_event_rates',
    text: `
      WITH w AS (SELECT date_trunc('minute', now()) AS m),
      spans AS (
        SELECT win, mins, extract(epoch FROM now() - (w.m - mins * interval '1 minute'))::float8 AS secs
        FROM w, (VALUES ('1m', 1), ('5m', 5), ('15m', 15)) AS s(win, mins)
      )
      SELECT q.name AS queue, e.event, s.win,
        (coalesce(sum(CASE e.event WHEN 'enqueued' THEN b.enqueued WHEN 'completed' THEN b.completed
          WHEN 'failed' THEN b.failed WHEN 'retried' THEN b.retried WHEN 'dead' THEN b.dead
          ELSE b.cancelled END), 0) / s.secs)::float8 AS per_s
      FROM sluice.queues q
      CROSS JOIN spans s
      CROSS JOIN (VALUES ('enqueued'), ('completed'), ('failed'), ('retried'), ('dead'), ('cancelled')) AS e(event)
      LEFT JOIN sluice.metrics_by_minute b
        ON b.queue = q.name AND b.minute >= date_trunc('minute', now()) - s.mins * interval '1 minute'
      GROUP BY q.name, e.event, s.win, s.secs
      ORDER BY 1, 2, 3`,
  });
  return rows.map((r) => ({ queue: r.queue, event: r.event, window: r.win, perSecond: Number(r.per_s) }));
}

export interface QueueLatency {
  queue: string;
  samples: number;
  waitMsP50: number | null;
  waitMsP95: number | null;
  runMsP50: number | null;
  runMsP95: number | null;
}

/** p50/p95 of wait and run time over each queue's latest completions; see sluice.queue_latency. */
export async function queueLatency(db: Queryable, sampleSize = 1000): Promise<QueueLatency[]> {
  const { rows } = await db.query<Record<string, unknown>>({
    name: 'sluice_queue_latency',
    text: `SELECT * FROM sluice.queue_latency($1) ORDER BY queue`,
    values: [sampleSize],
  });
  return rows.map((r) => ({
    queue: r.queue as string,
    samples: num(r.samples),
    waitMsP50: numOrNull(r.wait_ms_p50),
    waitMsP95: numOrNull(r.wait_ms_p95),
    runMsP50: numOrNull(r.run_ms_p50),
    runMsP95: numOrNull(r.run_ms_p95),
  }));
}

/** A registered worker with its liveness and load; see sluice.worker_status. */
export interface WorkerStatus extends WorkerRow {
  startedAt: Date;
  heartbeatAt: Date;
  alive: boolean;
  running: number;
}

export async function workerStatus(db: Queryable, deadAfterMs: number): Promise<WorkerStatus[]> {
  const { rows } = await db.query<Omit<WorkerStatus, 'startedAt' | 'heartbeatAt' | 'running'> & { started_at: Date; heartbeat_at: Date; running: string }>({
    name: 'sluice_worker_status',
    text: `SELECT * FROM sluice.worker_status($1) ORDER BY started_at`,
    values: [deadAfterMs],
  });
  return rows.map(({ started_at, heartbeat_at, running, ...r }) => ({ ...r, startedAt: started_at, heartbeatAt: heartbeat_at, running: Number(running) }));
}

/** One row of sluice.queues as `sluice queues list` prints it (its JSON keeps the column names). */
export interface QueueListRow {
  name: string;
  paused: boolean;
  concurrency: number | null;
  weight: number;
  max_depth: number | null;
  overflow: string;
  alert_max_depth: number | null;
  alert_max_wait_ms: number | null;
  alert_max_error_rate: number | null;
  alert_no_worker: boolean;
  keep_history: boolean;
  retention_ms: number;
}

/** Every queue's settings, as `sluice queues list` shows them. */
export async function queueSettingsAll(db: Queryable): Promise<QueueListRow[]> {
  const { rows } = await db.query<QueueListRow & { retention_ms: string }>({
    name: 'sluice_queue_settings_all',
    text: `SELECT name, paused, concurrency, weight, max_depth, overflow, alert_max_depth, alert_max_wait_ms,
             alert_max_error_rate::numeric::float8 AS alert_max_error_rate, alert_no_worker, keep_history, retention_ms
           FROM sluice.queues ORDER BY name`,
  });
  return rows.map((r) => ({ ...r, retention_ms: Number(r.retention_ms) }));
}

export interface ReplicaLag {
  /**
   * Seconds the replica's data trails the primary: 0 when it has replayed
   * everything it received, else the age of the last transaction it replayed.
   */
  lagSeconds: number;
}

/** The lag of the server `db` reads from; null when that server is not a replica. */
export async function replicaLag(db: Queryable): Promise<ReplicaLag | null> {
  const { rows } = await db.query<{ replica: boolean; lag: number | null }>({
    name: 'sluice_replica_lag',
    text: `SELECT pg_is_in_recovery() AS replica,
             CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                  ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8 END AS lag`,
  });
  const row = rows[0]!;
  return row.replica ? { lagSeconds: row.lag ?? 0 } : null;
}
