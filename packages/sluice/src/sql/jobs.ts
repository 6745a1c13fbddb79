// Runtime SQL for live jobs. Named statements are prepared once per
// connection by node-postgres.
import { SluiceError } from '../errors.js';
import type { Queryable } from '../executor.js';
import type { JobErrorEntry } from '../job-record.js';

/**
 * Job ids are bigint in SQL and numbers in TypeScript, exact up to
 * Number.MAX_SAFE_INTEGER (2^53 - 1): an identity handing out a million ids a
 * second reaches it after 285 years. Past it a rounded id could name another
 * job, so the conversion refuses instead.
 */
export function jobIdFromSql(text: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id)) throw new SluiceError(`job id ${text} is beyond Number.MAX_SAFE_INTEGER`);
  return id;
}

export interface EnqueueManyArgs {
  name: string;
  /** The payloads as one JSON array text, in order (serialized by the caller, once). */
  payloadsJson: string;
  queue: string | null;
  runAt: Date | null;
  priority: number | null;
  maxAttempts: number | null;
  timeoutMs: number | null;
  backoff: object | null;
  uniqueKeys: (string | null)[] | null;
  tags: string[] | null;
  groupKeys?: (string | null)[] | null;
  dependsOn?: number[] | null;
  onParentDead?: 'dead' | 'cancel';
  batchId?: number | null;
  uniqueWindowMs?: number | null;
  /** True when the caller has checked payload sizes itself; else sluice.enqueue_many checks 1 MiB. */
  payloadSizeChecked?: boolean;
  /** The caller waits for room when the queue is full and blocks: the answer is then null instead of an error. */
  waitWhenFull?: boolean;
  /** The statement is its own transaction and the caller calls jobWakeWorkers once it returns (see jobs/wake-workers.sql). */
  wakeAfterCommit?: boolean;
}

/** The new jobs' ids in input order; null when `waitWhenFull` and the queue (overflow block) had no room: nothing written. */
export async function jobEnqueueMany(db: Queryable, a: EnqueueManyArgs & { waitWhenFull: true }): Promise<number[] | null>;
export async function jobEnqueueMany(db: Queryable, a: EnqueueManyArgs): Promise<number[]>;
export async function jobEnqueueMany(db: Queryable, a: EnqueueManyArgs): Promise<number[] | null> {
  return (await jobEnqueueManyInTransaction(db, a)).ids;
}

/**
 * As jobEnqueueMany, with the id of the transaction that wrote them (txid,
 * for txid_status): in a caller's transaction, whether they were committed
 * can be asked later.
 */
export async function jobEnqueueManyInTransaction(db: Queryable, a: EnqueueManyArgs): Promise<{ ids: number[] | null; xid: string | null }> {
  // The ids come back in input order as one comma-separated text rather than
  // a row each (a 1,000-row result costs the client ~0.5 ms of CPU to parse)
  // or a bigint[] (node-postgres's array parser: ~0.35 ms per 1,000).
  const { rows } = await db.query<{ ids: string; xid: string | null }>({
    name: 'sluice_job_enqueue_many',
    // A NULL id is written as "null" (array_to_string would skip it, and
    // the ids after it would lose their places).
    text: `SELECT array_to_string(ARRAY(SELECT e.id FROM sluice.enqueue_many($1, $2::jsonb, $3, $4, $5, $6, $7, $8::jsonb,
             $9::text[], $10::text[], $11::text[], $12::bigint[], $13, $14, $15, $16, $17, $18) AS e(id)), ',', 'null') AS ids,
           txid_current_if_assigned()::text AS xid`,
    values: [
      a.name,
      a.payloadsJson,
      a.queue,
      a.runAt,
      a.priority,
      a.maxAttempts,
      a.timeoutMs,
      a.backoff === null ? null : JSON.stringify(a.backoff),
      a.uniqueKeys,
      a.tags,
      a.groupKeys ?? null,
      a.dependsOn ?? null,
      a.onParentDead ?? 'dead',
      a.batchId ?? null,
      a.uniqueWindowMs ?? null,
      a.payloadSizeChecked ? null : 1_048_576,
      a.waitWhenFull ?? false,
      a.wakeAfterCommit ?? false,
    ],
  });
  const { ids, xid } = rows[0]!;
  // Every call sends at least one payload, so no id at all means "full".
  if (ids === '') return { ids: a.waitWhenFull ? null : [], xid };
  const parts = ids.split(',');
  // sluice.enqueue_many answers every row with a job's id; an id of 0 in
  // its place would name no job and be taken for one.
  if (parts.includes('null')) throw new SluiceError(`sluice.enqueue_many returned no job id for a row of ${a.name} in queue ${a.queue ?? '(default)'}`);
  return { ids: parts.map(Number), xid };
}

/** Whether the transactions (txids) committed: 'committed', 'aborted', 'in progress', or null when too old to tell. */
export async function transactionStatus(db: Queryable, xid: string): Promise<string | null> {
  const { rows } = await db.query<{ status: string | null }>({ name: 'sluice_txid_status', text: 'SELECT txid_status($1::bigint) AS status', values: [xid] });
  return rows[0]?.status ?? null;
}

/** Wakes the workers of the queues of those jobs still available; run in a transaction of its own (jobs/wake-workers.sql). */
export async function jobWakeWorkers(db: Queryable, ids: readonly number[]): Promise<void> {
  await db.query({ name: 'sluice_job_wake_workers', text: 'SELECT sluice.wake_workers($1::bigint[])', values: [`{${ids.join(',')}}`] });
}

/**
 * Returns jobs of lost workers to their queue or the DLQ: those whose lease
 * lapsed, and, with lostSessionGraceMs, those of a worker whose process is
 * gone (see jobs/rescue-expired.sql).
 */
export async function jobRescueExpired(db: Queryable, batchSize: number, lostSessionGraceMs: number | null = null): Promise<Map<number, 'rescued' | 'dead'>> {
  const { rows } = await db.query<{ id: string; outcome: 'rescued' | 'dead' }>({
    name: 'sluice_job_rescue_expired',
    text: `SELECT id, outcome FROM sluice.rescue_expired($1, $2)`,
    values: [batchSize, lostSessionGraceMs],
  });
  return new Map(rows.map((r) => [Number(r.id), r.outcome]));
}

/** Raises the priority of jobs that waited a full aging period (queues with agingAfterMs). */
export async function jobAgePriorities(db: Queryable, batchSize: number): Promise<{ aged: number; shortestPeriodMs: number | null }> {
  const { rows } = await db.query<{ n: number; period_ms: number | null }>({
    name: 'sluice_job_age_priorities',
    text: `SELECT sluice.age_priorities($1) AS n, (SELECT min(q.aging_after_ms) FROM sluice.queues q) AS period_ms`,
    values: [batchSize],
  });
  return { aged: rows[0]?.n ?? 0, shortestPeriodMs: rows[0]?.period_ms ?? null };
}

/**
 * Asks for a sluice_finished notice when the job ends; returns whether the job
 * is live (so a later missing row means it completed in a queue that keeps
 * no history, not that it never existed). The UPDATE holds the row locked
 * until it commits, and a claim meanwhile skips an available job and may
 * resume past it: the job is announced again, in the form enqueues use
 * ("queue count first-id run_at_us"), which moves such a key back to it.
 */
export async function jobRequestFinishNotice(db: Queryable, id: number): Promise<boolean> {
  const { rows } = await db.query<{ live: boolean }>({
    name: 'sluice_job_request_finish_notice',
    text: `WITH requested AS (
             UPDATE sluice.jobs SET notify_on_finish = true WHERE id = $1 AND NOT notify_on_finish RETURNING queue, state, run_at
           ), announced AS (
             SELECT pg_notify('sluice_jobs', r.queue || ' 1 ' || $1::bigint || ' ' || (extract(epoch FROM r.run_at) * 1000000)::bigint)
             FROM requested r WHERE r.state = 'available'
           )
           SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE id = $1) AS live, (SELECT count(*) FROM announced) AS announced`,
    values: [id],
  });
  return rows[0]!.live;
}

export async function jobPromoteDue(db: Queryable, batchSize: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'sluice_job_promote_due',
    text: `SELECT sluice.promote_due($1) AS n`,
    values: [batchSize],
  });
  return rows[0]?.n ?? 0;
}

/** Releases (or sends down) waiting children whose parents all ended; see sluice.release_orphaned_waiting. */
export async function jobReleaseOrphanedWaiting(db: Queryable, batchSize: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'sluice_job_release_orphaned_waiting',
    text: `SELECT sluice.release_orphaned_waiting($1) AS n`,
    values: [batchSize],
  });
  return rows[0]?.n ?? 0;
}

/** Milliseconds until the next scheduled job is due, by the database's clock; null when none. */
export async function jobNextDueInMs(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ ms: number | null }>({
    name: 'sluice_job_next_due',
    text: `SELECT (extract(epoch FROM min(run_at) - clock_timestamp()) * 1000)::float8 AS ms
           FROM sluice.jobs WHERE state = 'scheduled'`,
  });
  return rows[0]?.ms ?? null;
}

export interface JobRow {
  id: string;
  queue: string;
  name: string;
  payload: unknown;
  priority: number;
  state: string;
  attempt: number;
  max_attempts: number;
  errors: JobErrorEntry[];
  created_at: Date;
  run_at: Date;
  attempted_at: Date | null;
  finished_at: Date | null;
  locked_by: string | null;
  result: unknown;
  progress: number | null;
  progress_message: string | null;
  group_key: string | null;
  batch_id: string | null;
  depends_on: string[] | null;
}

/** Finds a job wherever it is now: live, finished, or dead. */
export async function jobGet(db: Queryable, id: number): Promise<JobRow | null> {
  const { rows } = await db.query<JobRow>({
    name: 'sluice_job_get',
    text: `
      SELECT id, queue, name, payload, priority, state, attempt, max_attempts, errors, created_at, run_at,
             attempted_at, NULL::timestamptz AS finished_at, locked_by, NULL::jsonb AS result, progress,
             progress_message, group_key, batch_id, depends_on
      FROM sluice.jobs WHERE id = $1
      UNION ALL
      SELECT id, queue, name, payload, priority, state, attempt, max_attempts, errors, created_at, run_at,
             attempted_at, finished_at, NULL, result, NULL, NULL, NULL, batch_id, NULL
      FROM sluice.job_history WHERE id = $1
      UNION ALL
      SELECT id, queue, name, payload, priority, 'dead', attempt, max_attempts, errors, created_at, run_at,
             attempted_at, died_at, NULL, NULL, NULL, NULL, group_key, batch_id, depends_on
      FROM sluice.dead_jobs WHERE id = $1
      LIMIT 1`,
    values: [id],
  });
  return rows[0] ?? null;
}

/** Cancels a waiting job; returns the state it had, or null when no live job has that id. */
export async function jobCancel(db: Queryable, id: number): Promise<string | null> {
  const { rows } = await db.query<{ state: string | null }>({
    name: 'sluice_job_cancel',
    text: `SELECT sluice.cancel($1) AS state`,
    values: [id],
  });
  return rows[0]?.state ?? null;
}

/** Makes a job waiting for its retry time runnable now; returns false when none was waiting (a delayed job that never ran is not one). */
export async function jobRetryNow(db: Queryable, id: number): Promise<boolean> {
  const { rows } = await db.query<{ queue: string }>({
    name: 'sluice_job_retry_now',
    text: `
      WITH upd AS (
        UPDATE sluice.jobs SET state = 'available', run_at = now()
        WHERE id = $1 AND state = 'scheduled' AND attempt > 0 RETURNING queue
      )
      -- Its run_at is this transaction's start: behind jobs enqueued and
      -- claimed meanwhile, so behind where those claims resume (jobs/claim.sql).
      SELECT queue, pg_notify('sluice_jobs', queue), pg_notify('sluice_rewind', queue) FROM upd`,
    values: [id],
  });
  return rows.length > 0;
}
