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

/** A claimed job; the id is a number from here on (see jobIdFromSql). */
export interface ClaimedJobRow {
  id: number;
  name: string;
  queue: string;
  payload: unknown;
  priority: number;
  attempt: number;
  max_attempts: number;
  timeout_ms: number | null;
  created_at: Date;
  /** This claim's lease token (its time in epoch microseconds): every later write presents it. */
  lease: number;
  /** run_at in epoch microseconds: with priority and id, where the next claim of its queue may resume. */
  run_at_us: number;
}

/** Where a queue's next claim resumes (see sluice.claim); null: from the front. */
export interface ClaimResume {
  priority: number;
  runAtUs: number;
  id: number;
}

/**
 * A PostgreSQL array literal of numbers. node-postgres turns a JS array into
 * one by escaping every element as a string; for the thousands of ids,
 * attempts and leases a worker sends a second, a join is far cheaper.
 */
export function intArrayLiteral(values: readonly number[]): string {
  return `{${values.join(',')}}`;
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
}

/** The new jobs' ids in input order; null when `waitWhenFull` and the queue (overflow block) had no room: nothing written. */
export async function jobEnqueueMany(db: Queryable, a: EnqueueManyArgs & { waitWhenFull: true }): Promise<number[] | null>;
export async function jobEnqueueMany(db: Queryable, a: EnqueueManyArgs): Promise<number[]>;
export async function jobEnqueueMany(db: Queryable, a: EnqueueManyArgs): Promise<number[] | null> {
  // The ids come back in input order as one comma-separated text rather than
  // a row each (a 1,000-row result costs the client ~0.5 ms of CPU to parse)
  // or a bigint[] (node-postgres's array parser: ~0.35 ms per 1,000).
  const { rows } = await db.query<{ ids: string }>({
    name: 'sluice_job_enqueue_many',
    // coalesce: array_to_string skips NULLs, and a NULL id (a unique-key
    // duplicate whose live job ended meanwhile) must keep its place (as 0).
    text: `SELECT array_to_string(ARRAY(SELECT coalesce(e.id, 0) FROM sluice.enqueue_many($1, $2::jsonb, $3, $4, $5, $6, $7, $8::jsonb,
             $9::text[], $10::text[], $11::text[], $12::bigint[], $13, $14, $15, $16, $17) AS e(id)), ',') AS ids`,
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
    ],
  });
  const ids = rows[0]!.ids;
  // Every call sends at least one payload, so no id at all means "full".
  if (ids === '') return a.waitWhenFull ? null : [];
  return ids.split(',').map(Number);
}

/**
 * Claims up to limits[i] available jobs from each queues[i], highest priority
 * first and FIFO within a priority, honouring each queue's pause, concurrency,
 * group and rate limits (see sluice.claim). Each claim starts a new attempt:
 * the attempt number is the lease every later write must present.
 */
export async function jobClaim(
  db: Queryable,
  a: { queues: string[]; limits: number[]; workerId: string; leaseMs: number; resume?: (ClaimResume | null)[] },
): Promise<ClaimedJobRow[]> {
  const resume = a.resume?.some(Boolean) ? a.resume : null;
  // The batch comes back as one JSON array of arrays, in the claim's order
  // (UPDATE ... RETURNING keeps none): one JSON.parse of the whole batch costs
  // the worker far less than a row each with a value per column (the payload
  // stays inline JSON instead of a jsonb value parsed on its own). Ids come
  // as text, checked by jobIdFromSql; lease tokens and run_at (epoch
  // microseconds) stay below 2^53 until the year 2255; created_at comes as
  // epoch milliseconds in double precision (numeric arithmetic per job costs
  // the server a microsecond; a millisecond clock needs no more precision).
  const { rows } = await db.query<{ batch: [string, string, string, unknown, number, number, number, number | null, number, number, number][] }>({
    name: 'sluice_job_claim',
    text: `SELECT json_agg(json_build_array(c.id::text, c.name, c.queue, c.payload, c.priority, c.attempt, c.max_attempts, c.timeout_ms,
                    date_part('epoch', c.created_at) * 1000, c.lease, (date_part('epoch', c.run_at) * 1000000)::bigint)
                    ORDER BY c.priority DESC, c.run_at, c.id) AS batch
           FROM sluice.claim($1::text[], $2::integer[], $3, $4, $5::smallint[], $6::bigint[], $7::bigint[]) c
           HAVING count(*) > 0`,
    values: [
      a.queues,
      a.limits,
      a.workerId,
      a.leaseMs,
      resume && resume.map((r) => r?.priority ?? null),
      resume && resume.map((r) => r?.runAtUs ?? null),
      resume && resume.map((r) => r?.id ?? null),
    ],
  });
  // No row at all when nothing was claimed, as with a row per job.
  return (rows[0]?.batch ?? []).map((r) => ({
    id: jobIdFromSql(r[0]),
    name: r[1],
    queue: r[2],
    payload: r[3],
    priority: r[4],
    attempt: r[5],
    max_attempts: r[6],
    timeout_ms: r[7],
    created_at: new Date(r[8]),
    lease: r[9],
    run_at_us: r[10],
  }));
}

/**
 * Completes jobs whose lease (id + attempt, still running) matches, storing
 * each result and handler run time. Returns the ids applied; the others were
 * stale answers. Only those come back from the server (usually none), not a
 * row per completed job.
 */
export async function jobCompleteMany(
  db: Queryable,
  a: { ids: number[]; attempts: number[]; results: (string | null)[]; runMs: number[]; workerId?: string; leases?: number[] },
): Promise<Set<number>> {
  const { rows } = await db.query<{ stale: string }>({
    name: 'sluice_job_complete_many',
    text: `SELECT array_to_string(ARRAY(SELECT x FROM unnest($1::bigint[]) x
             EXCEPT ALL SELECT sluice.job_complete_many($1::bigint[], $2::integer[], $3::jsonb[], $4::integer[], $5::text, $6::bigint[])), ',') AS stale`,
    values: [
      intArrayLiteral(a.ids),
      intArrayLiteral(a.attempts),
      // Most handlers return nothing: then no array of NULLs is sent at all.
      a.results.some((r) => r !== null) ? a.results : null,
      intArrayLiteral(a.runMs),
      a.workerId ?? null,
      a.leases ? intArrayLiteral(a.leases) : null,
    ],
  });
  const applied = new Set(a.ids);
  const stale = rows[0]!.stale;
  if (stale !== '') for (const id of stale.split(',')) applied.delete(Number(id));
  return applied;
}

export interface FailArgs {
  ids: number[];
  attempts: number[];
  errors: JobErrorEntry[];
  permanent: boolean[];
  retryDelaysMs: (number | null)[];
  runMs: number[];
  /** The worker answering, and the lease of each claim: writes apply only to the claims named. */
  workerId?: string;
  leases?: number[];
}

/** Records failed attempts; see sluice.job_fail_many. Returns the outcome per applied id. */
export async function jobFailMany(db: Queryable, a: FailArgs): Promise<Map<number, 'retry' | 'dead'>> {
  const { rows } = await db.query<{ id: string; outcome: 'retry' | 'dead' }>({
    name: 'sluice_job_fail_many',
    text: `SELECT id, outcome FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[], $5::integer[], $6::integer[],
             $7::text, $8::bigint[])`,
    values: [
      a.ids,
      a.attempts,
      a.errors.map((e) => JSON.stringify(e)),
      a.permanent,
      a.retryDelaysMs,
      a.runMs,
      a.workerId ?? null,
      a.leases ?? null,
    ],
  });
  return new Map(rows.map((r) => [Number(r.id), r.outcome]));
}

/**
 * Gives claimed jobs that never started (or were cut short by shutdown) back
 * to their queue at once. The attempt is handed back too: it never ran to an
 * answer, so it must not count against the job's retry budget.
 */
export async function jobReleaseMany(
  db: Queryable,
  a: { ids: number[]; attempts: number[]; leases: number[]; workerId: string },
): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_job_release_many',
    text: `
      WITH released AS (
        UPDATE sluice.jobs j
        SET state = 'available', attempt = j.attempt - 1, locked_by = NULL, locked_until = NULL
        FROM unnest($1::bigint[], $2::integer[], $4::bigint[]) AS i(id, attempt, lease)
        WHERE j.id = ANY($1::bigint[]) AND j.id = i.id AND j.attempt = i.attempt AND j.state = 'running'
          AND j.locked_by = $3 AND sluice.lease_holds(j.attempted_at, i.lease)
        RETURNING j.queue
      ), notified AS (
        SELECT pg_notify('sluice_jobs', queue), pg_notify('sluice_rewind', queue) FROM (SELECT DISTINCT queue FROM released) q
      )
      SELECT (SELECT count(*) FROM released) AS n, (SELECT count(*) FROM notified) AS queues`,
    values: [a.ids, a.attempts, a.workerId, a.leases],
  });
  return Number(rows[0]?.n ?? 0);
}

/** Returns jobs whose lease lapsed (their worker stopped heartbeating) to their queue or the DLQ. */
export async function jobRescueExpired(db: Queryable, batchSize: number): Promise<Map<number, 'rescued' | 'dead'>> {
  const { rows } = await db.query<{ id: string; outcome: 'rescued' | 'dead' }>({
    name: 'sluice_job_rescue_expired',
    text: `SELECT id, outcome FROM sluice.rescue_expired($1)`,
    values: [batchSize],
  });
  return new Map(rows.map((r) => [Number(r.id), r.outcome]));
}

/** Fenced progress write; false when the attempt no longer holds the job. */
export async function jobProgress(
  db: Queryable,
  a: { id: number; attempt: number; pct: number; message: string | null; workerId: string; lease: number },
): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>({
    name: 'sluice_job_progress',
    text: `SELECT sluice.job_progress($1, $2, $3, $4, $5, $6) AS ok`,
    values: [a.id, a.attempt, a.pct, a.message, a.workerId, a.lease],
  });
  return rows[0]?.ok ?? false;
}

/** Raises the priority of jobs that waited a full aging period (queues with agingAfterMs). */
export async function jobAgePriorities(db: Queryable, batchSize: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'sluice_job_age_priorities',
    text: `SELECT sluice.age_priorities($1) AS n`,
    values: [batchSize],
  });
  return rows[0]?.n ?? 0;
}

/** Asks for the job's end to be announced on sluice_finished; false when it is no longer live. */
/**
 * Asks for a sluice_finished notice when the job ends; returns whether the job
 * is live (so a later missing row means it completed in a queue that keeps
 * no history, not that it never existed).
 */
export async function jobRequestFinishNotice(db: Queryable, id: number): Promise<boolean> {
  const { rows } = await db.query<{ live: boolean }>({
    name: 'sluice_job_request_finish_notice',
    text: `WITH requested AS (UPDATE sluice.jobs SET notify_on_finish = true WHERE id = $1 AND NOT notify_on_finish)
           SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE id = $1) AS live`,
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
             attempted_at, died_at, NULL, NULL, NULL, NULL, group_key, batch_id, NULL
      FROM sluice.dead_jobs WHERE id = $1
      LIMIT 1`,
    values: [id],
  });
  return rows[0] ?? null;
}

/**
 * Whether this claim (worker, attempt, lease token) still holds the job: a
 * cancel notice is only a hint, and the worker aborts nothing until this
 * says the claim is gone.
 */
export async function jobLeaseHolds(db: Queryable, a: { id: number; attempt: number; workerId: string; lease: number }): Promise<boolean> {
  const { rows } = await db.query<{ holds: boolean }>({
    name: 'sluice_job_lease_holds',
    text: `SELECT EXISTS (SELECT 1 FROM sluice.jobs WHERE id = $1 AND state = 'running' AND attempt = $2 AND locked_by = $3
                          AND sluice.lease_holds(attempted_at, $4::bigint)) AS holds`,
    values: [a.id, a.attempt, a.workerId, a.lease],
  });
  return rows[0]!.holds;
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

/** Makes a job waiting for its retry time runnable now; returns false when none was waiting. */
export async function jobRetryNow(db: Queryable, id: number): Promise<boolean> {
  const { rows } = await db.query<{ queue: string }>({
    name: 'sluice_job_retry_now',
    text: `
      WITH upd AS (
        UPDATE sluice.jobs SET state = 'available', run_at = now()
        WHERE id = $1 AND state = 'scheduled' RETURNING queue
      )
      SELECT queue, pg_notify('sluice_jobs', queue) FROM upd`,
    values: [id],
  });
  return rows.length > 0;
}
