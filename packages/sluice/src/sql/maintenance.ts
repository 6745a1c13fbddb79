// Runtime SQL for retention and health: history partitions, pruning, the
// dead-letter purge and the doctor's checks (drizzle/functions/history/, dead-jobs/, maintenance/).
import type { Queryable } from '../executor.js';

export interface HistoryPartition {
  partition: string;
  rangeFrom: Date | null;
  rangeTo: Date | null;
  isDefault: boolean;
  rowsEstimate: number;
}

export async function historyPartitions(db: Queryable): Promise<HistoryPartition[]> {
  const { rows } = await db.query<{ partition: string; range_from: Date | null; range_to: Date | null; is_default: boolean; rows_estimate: string }>({
    name: 'sluice_history_partitions',
    text: `SELECT * FROM sluice.history_partitions()`,
  });
  return rows.map((r) => ({
    partition: r.partition,
    rangeFrom: r.range_from,
    rangeTo: r.range_to,
    isDefault: r.is_default,
    rowsEstimate: Number(r.rows_estimate),
  }));
}

/** Creates the day partitions from today to today + daysAhead that are missing; returns how many. */
export async function historyCreatePartitions(db: Queryable, daysAhead: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'sluice_history_create_partitions',
    text: `SELECT sluice.create_history_partitions($1) AS n`,
    values: [daysAhead],
  });
  return rows[0]?.n ?? 0;
}

/**
 * Drops the day partitions older than every queue's retention (the longest
 * one decides, as a partition holds every queue's rows). Returns their names.
 */
export async function historyDropExpiredPartitions(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>({
    name: 'sluice_history_drop_expired_partitions',
    text: `SELECT sluice.drop_history_partitions(
             now() - coalesce((SELECT max(retention_ms) FROM sluice.queues), 604800000) * interval '1 millisecond') AS name`,
  });
  return rows.map((r) => r.name);
}

/** Deletes up to batchSize history rows past their queue's retention; returns how many. */
export async function historyPrune(db: Queryable, batchSize: number): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_history_prune',
    text: `SELECT sluice.prune_history($1) AS n`,
    values: [batchSize],
  });
  return Number(rows[0]?.n ?? 0);
}

/** Deletes up to batchSize metric rows older than olderThan; returns how many. */
export async function metricsPrune(db: Queryable, olderThan: Date, batchSize: number): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_metrics_prune',
    text: `SELECT sluice.prune_metrics($1, $2) AS n`,
    values: [olderThan, batchSize],
  });
  return Number(rows[0]?.n ?? 0);
}

export interface DeadFilter {
  queue?: string | null;
  name?: string | null;
  /** Only jobs that died more than this many milliseconds ago (by the database's clock). */
  olderThanMs?: number | null;
  ids?: number[] | null;
  /** Every dead job (combined with nothing else). */
  all?: boolean;
}

/** Deletes dead jobs matching every given filter (at least one, or `all`, is required). */
export async function deadPurge(db: Queryable, f: DeadFilter): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_dead_purge',
    text: `SELECT sluice.dead_purge($1, $2,
             CASE WHEN $5::boolean THEN 'infinity'::timestamptz
                  WHEN $3::bigint IS NULL THEN NULL
                  ELSE now() - $3::bigint * interval '1 millisecond' END,
             $4::bigint[]) AS n`,
    values: [f.queue ?? null, f.name ?? null, f.olderThanMs ?? null, f.ids ?? null, f.all ?? false],
  });
  return Number(rows[0]?.n ?? 0);
}

export interface DoctorCheck {
  check: 'dead_tuples' | 'bloat' | 'partitions' | 'long_xact';
  status: 'ok' | 'warn';
  subject: string;
  value: number;
  detail: string;
}

export async function doctorChecks(db: Queryable, longXactMs: number): Promise<DoctorCheck[]> {
  const { rows } = await db.query<{ check_name: DoctorCheck['check']; status: DoctorCheck['status']; subject: string; value: number; detail: string }>({
    name: 'sluice_doctor_checks',
    text: `SELECT check_name, status, subject, value, detail FROM sluice.doctor($1)`,
    values: [longXactMs],
  });
  return rows.map((r) => ({ check: r.check_name, status: r.status, subject: r.subject, value: Number(r.value), detail: r.detail }));
}
