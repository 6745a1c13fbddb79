// Runtime SQL for retention and health: history partitions, pruning and the
// doctor's checks (drizzle/functions/history/, maintenance/).
import type { Queryable } from '../executor.js';
import { RETENTION_MS_MAX } from '../config.js';

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
             now() - least(coalesce((SELECT max(retention_ms) FROM sluice.queues), 604800000), ${RETENTION_MS_MAX}) * interval '1 millisecond') AS name`,
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
