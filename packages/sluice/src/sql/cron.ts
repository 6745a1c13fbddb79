// Runtime SQL for cron schedules.
import type { Queryable } from '../executor.js';
import type { ScheduleDefinition } from '../schedule.js';
import type { ScheduledJobOptions } from '../schedule.js';

export interface CronRow {
  name: string;
  cron: string;
  timezone: string;
  job_name: string;
  payload: unknown;
  enabled: boolean;
  misfire: 'skip' | 'run_once' | 'run_all';
  run_all_cap: number;
  next_run_at: Date | null;
  last_run_at: Date | null;
  last_error: string | null;
  fail_count: number;
  retry_at: Date | null;
  job_options: ScheduledJobOptions | null;
  declared_in: 'code' | 'sql';
  /** The worker service that declares it in code; null for a worker without a service or a schedule added by SQL. */
  service: string | null;
}

const COLUMNS = `name, cron, timezone, job_name, payload, enabled, misfire, run_all_cap, next_run_at, last_run_at, last_error,
  fail_count, retry_at, job_options, declared_in, service`;

// A row a scheduler disabled because it could not read it, as opposed to one
// an operator disabled: cronDisableWithError leaves a reason with no retry
// time. A failed fire sets both, and enabling drops such a reason, so an
// operator's disable never looks like this, save of a row already disabled
// this way (a disable that changed nothing). Uses the upsert's alias c.
const DISABLED_AS_UNREADABLE = `(NOT c.enabled AND c.last_error IS NOT NULL AND c.retry_at IS NULL)`;

/**
 * A code schedule's definition as a worker records it (sluice.workers.schedule_definitions):
 * the columns cronSaveMany writes, by column name, so that sluice.redeclare_schedules
 * compares it with a stored row as jsonb.
 */
export interface DeclaredSchedule {
  name: string;
  cron: string;
  timezone: string;
  job_name: string;
  payload: unknown;
  misfire: string;
  run_all_cap: number;
  job_options: unknown;
}

export function declaredSchedule(d: ScheduleDefinition): DeclaredSchedule {
  return {
    name: d.name,
    cron: d.cron,
    timezone: d.timezone,
    job_name: d.jobName,
    payload: d.payload ?? {},
    misfire: d.misfire,
    run_all_cap: d.runAllCap,
    job_options: d.jobOptions ?? null,
  };
}

/**
 * Writes schedules, in name order (sluice.redeclare_schedules locks them in
 * that order too, so neither waits for the other's). A row whose expression
 * and zone are unchanged keeps its next_run_at and history; a changed one
 * gets the new next_run_at. `enabled` is left as an operator set it; a row a
 * scheduler disabled as unreadable is enabled again, as the definition saved
 * now is valid, and nothing else would ever enable it. Schedules declared in
 * code belong to the declaring worker's service from then on.
 */
export async function cronSaveMany(
  db: Queryable,
  defs: readonly ScheduleDefinition[],
  nextRunAts: readonly Date[],
  declared: { in: 'code'; service: string | null; startedAt: string } | { in: 'sql' },
): Promise<void> {
  if (defs.length === 0) return;
  await db.query({
    name: 'sluice_cron_save_many',
    text: `${CRON_INSERT}
      ON CONFLICT (name) DO UPDATE SET
        cron = excluded.cron, timezone = excluded.timezone, job_name = excluded.job_name, payload = excluded.payload,
        misfire = excluded.misfire, run_all_cap = excluded.run_all_cap, declared_in = excluded.declared_in, service = excluded.service,
        job_options = excluded.job_options, last_error = NULL, fail_count = 0, retry_at = NULL, updated_at = now(),
        enabled = c.enabled OR ${DISABLED_AS_UNREADABLE},
        next_run_at = CASE WHEN (c.cron, c.timezone) IS DISTINCT FROM (excluded.cron, excluded.timezone) OR c.next_run_at IS NULL
                             OR ${DISABLED_AS_UNREADABLE}
                           THEN excluded.next_run_at ELSE c.next_run_at END
      -- From code: a known worker of the service that started later and
      -- declares the schedule decides its definition (registration and this
      -- save are two statements, and one may have come between them).
      WHERE $12::timestamptz IS NULL OR NOT EXISTS (
        SELECT 1 FROM sluice.workers w
        WHERE w.service IS NOT DISTINCT FROM excluded.service AND w.started_at > $12::timestamptz AND excluded.name = ANY(w.schedules))`,
    values: [...cronInsertValues(defs, nextRunAts, declared), declared.in === 'code' ? declared.startedAt : null],
  });
}

/**
 * Inserts the code schedules that do not exist, leaving every existing one as
 * it is: what a worker the leader forgot declares again (the round that
 * forgot it removed those only it declared). Its definitions must not
 * overwrite others': the workers known meanwhile, started later, decide them.
 */
export async function cronInsertMissing(
  db: Queryable,
  defs: readonly ScheduleDefinition[],
  nextRunAts: readonly Date[],
  service: string | null,
): Promise<void> {
  if (defs.length === 0) return;
  await db.query({
    name: 'sluice_cron_insert_missing',
    text: `${CRON_INSERT}
      ON CONFLICT (name) DO NOTHING`,
    values: cronInsertValues(defs, nextRunAts, { in: 'code', service }),
  });
}

const CRON_INSERT = `
      INSERT INTO sluice.cron_schedules AS c (name, cron, timezone, job_name, payload, misfire, run_all_cap, next_run_at, declared_in,
        job_options, service)
      SELECT n, cr, tz, j, p, m, cap, nx, $9, o, $11 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
        $6::text[], $7::integer[], $8::timestamptz[], $10::jsonb[]) AS u(n, cr, tz, j, p, m, cap, nx, o)
      ORDER BY n`;

function cronInsertValues(
  defs: readonly ScheduleDefinition[],
  nextRunAts: readonly Date[],
  declared: { in: 'code'; service: string | null } | { in: 'sql' },
): unknown[] {
  return [
    defs.map((d) => d.name),
    defs.map((d) => d.cron),
    defs.map((d) => d.timezone),
    defs.map((d) => d.jobName),
    defs.map((d) => JSON.stringify(d.payload ?? {})),
    defs.map((d) => d.misfire),
    defs.map((d) => d.runAllCap),
    nextRunAts,
    declared.in,
    defs.map((d) => (d.jobOptions ? JSON.stringify(d.jobOptions) : null)),
    declared.in === 'code' ? declared.service : null,
  ];
}

export async function cronList(db: Queryable): Promise<CronRow[]> {
  const { rows } = await db.query<CronRow>({
    name: 'sluice_cron_list',
    text: `SELECT ${COLUMNS} FROM sluice.cron_schedules ORDER BY name`,
  });
  return rows;
}

export async function cronGet(db: Queryable, name: string): Promise<CronRow | null> {
  const { rows } = await db.query<CronRow>({
    name: 'sluice_cron_get',
    text: `SELECT ${COLUMNS} FROM sluice.cron_schedules WHERE name = $1`,
    values: [name],
  });
  return rows[0] ?? null;
}

/**
 * Enables or disables; enabling starts from the next fire after now, so it
 * never catches up on the disabled span. Enabling drops a scheduler's reason
 * for disabling the row (the caller has read it since): kept, it would mark an
 * operator's later disable as the scheduler's, which a redeclaration undoes.
 */
export async function cronSetEnabled(db: Queryable, name: string, enabled: boolean, nextRunAt: Date | null): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'sluice_cron_set_enabled',
    text: `UPDATE sluice.cron_schedules SET enabled = $2, updated_at = now(),
             next_run_at = CASE WHEN $2 AND NOT enabled THEN $3 ELSE next_run_at END,
             last_error = CASE WHEN $2 AND NOT enabled AND retry_at IS NULL THEN NULL ELSE last_error END
           WHERE name = $1`,
    values: [name, enabled, nextRunAt],
  });
  return (rowCount ?? 0) > 0;
}

export async function cronRemove(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'sluice_cron_remove',
    text: `DELETE FROM sluice.cron_schedules WHERE name = $1`,
    values: [name],
  });
  return (rowCount ?? 0) > 0;
}

/**
 * How long a fire's enqueue waits for a lock (lock_timeout) before the fire
 * fails and is retried later: a producer that enqueues into a bounded queue
 * holds the queue's row until its own transaction ends, and a fire waiting
 * for it held back every other due schedule.
 */
export const CRON_LOCK_WAIT_MS = 2_000;

/**
 * Ends a statement's wait for a lock after CRON_LOCK_WAIT_MS (for this
 * transaction only). Its transaction is a duty's (DutyDb): the server also
 * ends it should it sit idle, so a leader frozen mid-fire (SIGSTOP, a paused
 * container, a partition) does not keep the due schedules locked.
 */
export async function cronLimitLockWaits(db: Queryable): Promise<void> {
  await db.query({
    name: 'sluice_cron_limit_lock_waits',
    text: `SELECT set_config('lock_timeout', $1, true)`,
    values: [String(CRON_LOCK_WAIT_MS)],
  });
}

/** Locks due (or never computed) enabled schedules whose retry time, if any, has come; run inside a transaction. */
export async function cronClaimDue(db: Queryable, limit: number): Promise<{ rows: CronRow[]; now: Date }> {
  const { rows } = await db.query<CronRow & { db_now: Date }>({
    name: 'sluice_cron_claim_due',
    text: `SELECT ${COLUMNS}, clock_timestamp() AS db_now FROM sluice.cron_schedules
           WHERE enabled AND (next_run_at IS NULL OR next_run_at <= clock_timestamp())
             AND (retry_at IS NULL OR retry_at <= clock_timestamp())
           ORDER BY next_run_at NULLS FIRST
           LIMIT $1
           FOR UPDATE SKIP LOCKED`,
    values: [limit],
  });
  const now = rows[0]?.db_now ?? new Date();
  return { rows, now };
}

/** A fire succeeded: the next one is due at nextRunAt, and any earlier failure is over. */
export async function cronAdvance(db: Queryable, name: string, nextRunAt: Date, lastRunAt: Date | null): Promise<void> {
  await db.query({
    name: 'sluice_cron_advance',
    text: `UPDATE sluice.cron_schedules SET next_run_at = $2, last_run_at = coalesce($3, last_run_at),
             last_error = NULL, fail_count = 0, retry_at = NULL
           WHERE name = $1`,
    values: [name, nextRunAt, lastRunAt],
  });
}

/**
 * A fire failed (its job could not be enqueued): records why, and holds the
 * schedule back until retryAt. nextRunAt moves only when the misfire policy
 * drops the failed fire; otherwise it stays, and the retry catches up.
 */
export async function cronRecordFailure(
  db: Queryable,
  a: { name: string; error: string; retryAt: Date; nextRunAt: Date | null },
): Promise<void> {
  await db.query({
    name: 'sluice_cron_record_failure',
    text: `UPDATE sluice.cron_schedules SET last_error = $2, fail_count = fail_count + 1, retry_at = $3,
             next_run_at = coalesce($4, next_run_at)
           WHERE name = $1`,
    values: [a.name, a.error, a.retryAt, a.nextRunAt],
  });
}

/**
 * A row a scheduler cannot read (inserted by SQL with a bad expression) is
 * disabled with the reason, and without a retry time: that pair is how a
 * later save of a valid definition tells it from an operator's disable.
 */
export async function cronDisableWithError(db: Queryable, name: string, error: string): Promise<void> {
  await db.query({
    name: 'sluice_cron_disable_with_error',
    text: `UPDATE sluice.cron_schedules SET enabled = false, last_error = $2, fail_count = 0, retry_at = NULL, updated_at = now()
           WHERE name = $1`,
    values: [name, error],
  });
}

export async function cronNextDueInMs(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>({
    name: 'sluice_cron_next_due',
    // A row without a next run is due now, unless a failed fire holds it back until retry_at.
    text: `SELECT CASE WHEN bool_or(next_run_at IS NULL AND (retry_at IS NULL OR retry_at <= clock_timestamp())) THEN 0
                  ELSE extract(epoch FROM min(greatest(next_run_at, retry_at)) - clock_timestamp()) * 1000 END::float8 AS ms
           FROM sluice.cron_schedules WHERE enabled`,
  });
  return rows[0]?.ms ?? null;
}

// The code schedules of a service that none of its known workers declares
// (cron-schedules/undeclared.sql): what a deploy dropped. NULL matches NULL:
// workers without a service are one service.

/** Names of the schedules of `service` that no known worker of it declares. */
export async function cronUndeclaredNames(db: Queryable, service: string | null): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>({
    name: 'sluice_cron_undeclared_names',
    text: `SELECT name FROM sluice.undeclared_schedules() WHERE service IS NOT DISTINCT FROM $1 ORDER BY name`,
    values: [service],
  });
  return rows.map((r) => r.name);
}

/** Schedules a settling function changed, by name and service. */
export type ServiceSchedules = { name: string; service: string | null }[];

/** Calls a settling function of `service` only, or of every service (undefined). */
async function settle(db: Queryable, statement: string, fn: string, service: string | null | undefined): Promise<ServiceSchedules> {
  const { rows } = await db.query<{ name: string; service: string | null }>({
    name: statement,
    text: `SELECT name, service FROM sluice.${fn}($1, $2) ORDER BY name`,
    values: [service !== undefined, service ?? null],
  });
  return rows;
}

/**
 * Deletes the schedules no known worker of their service declares, where a
 * known one removes them (sluice.remove_undeclared_schedules). Returns them.
 */
export function cronRemoveUndeclared(db: Queryable, service?: string | null): Promise<ServiceSchedules> {
  return settle(db, 'sluice_cron_remove_undeclared', 'remove_undeclared_schedules', service);
}

/**
 * Gives the schedules whose stored definition no known worker declares any
 * more the latest started declarer's (sluice.redeclare_schedules). Returns them.
 */
export function cronRedeclare(db: Queryable, service?: string | null): Promise<ServiceSchedules> {
  return settle(db, 'sluice_cron_redeclare', 'redeclare_schedules', service);
}
