// Runtime SQL for the claims a worker holds: claiming jobs, answering them
// (complete, fail, release), and fenced writes under the lease. Named
// statements are prepared once per connection by node-postgres.
import type { Queryable } from '../executor.js';
import type { JobErrorEntry } from '../job-record.js';
import { jobIdFromSql } from './jobs.js';

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

/** Where a claim's answer starts a new row: a row holds the jobs that start within each such span of bytes. */
export const CLAIM_CHUNK_BYTES = 64 * 1024 * 1024;

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
  // stays inline JSON instead of a jsonb value parsed on its own). The server
  // writes that text by concatenation, not json_build_array, which looks up
  // the output function of each of its eleven arguments again for every row:
  // names and queues need no escaping (their CHECKs allow only
  // [A-Za-z0-9._:-]), the payload is jsonb's own JSON text, the rest are
  // numbers. Ids come as strings, checked by jobIdFromSql; lease tokens and
  // run_at (epoch microseconds) stay below 2^53 until the year 2255;
  // created_at comes as epoch milliseconds in double precision (numeric
  // arithmetic per job costs the server a microsecond; a millisecond clock
  // needs no more precision), null if it is not finite.
  // A batch larger than CLAIM_CHUNK_BYTES comes as several rows, each a JSON
  // array of whole jobs in claim order: one text value of a thousand large
  // payloads would pass V8's string limit (~512 MiB) or PostgreSQL's 1 GB,
  // and the worker would die with the claim already committed.
  const { rows } = await db.query<{ batch: string }>({
    name: 'sluice_job_claim',
    text: `SELECT '[' || string_agg(j.t, ',' ORDER BY j.o) || ']' AS batch
           FROM (SELECT r.t, r.o, (sum(octet_length(r.t)) OVER (ORDER BY r.o) - octet_length(r.t)) / ${CLAIM_CHUNK_BYTES} AS chunk
                 FROM (SELECT '["' || c.id || '","' || c.name || '","' || c.queue || '",' || c.payload::text
                                || ',' || c.priority || ',' || c.attempt || ',' || c.max_attempts || ',' || coalesce(c.timeout_ms::text, 'null')
                                || ',' || CASE WHEN isfinite(c.created_at) THEN (date_part('epoch', c.created_at) * 1000)::text ELSE 'null' END
                                || ',' || c.lease || ',' || (date_part('epoch', c.run_at) * 1000000)::bigint || ']' AS t,
                              row_number() OVER (ORDER BY c.priority DESC, c.run_at, c.id) AS o
                       FROM sluice.claim($1::text[], $2::integer[], $3, $4, $5::smallint[], $6::bigint[], $7::bigint[]) c) r) j
           GROUP BY j.chunk
           ORDER BY j.chunk`,
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
  return rows.flatMap((row) => parseClaimBatch(row.batch));
}

function parseClaimBatch(batch: string): ClaimedJobRow[] {
  return (JSON.parse(batch) as [string, string, string, unknown, number, number, number, number | null, number | null, number, number][]).map((r) => ({
    id: jobIdFromSql(r[0]),
    name: r[1],
    queue: r[2],
    payload: r[3],
    priority: r[4],
    attempt: r[5],
    max_attempts: r[6],
    timeout_ms: r[7],
    created_at: new Date(r[8] ?? 0),
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

/** An acknowledgement whose write may have committed unseen: its failure's error entry is named by `errorAt`. */
export interface UncertainAck {
  id: number;
  attempt: number;
  queue: string;
  /** The `at` of the failure's error entry; null for a completion. */
  errorAt: string | null;
  /** The claim's lease token: an attempt number alone does not name a claim. */
  lease: number;
}

/**
 * What the acknowledgements given did, as far as the database shows
 * (sluice.ack_outcomes): keyed by `id:attempt`, only those found applied
 * ('completed', 'retry', 'dead') or whose fate nothing left can tell
 * ('unknown': a completion in a queue that keeps no history).
 */
export async function jobAckOutcomes(db: Queryable, acks: UncertainAck[]): Promise<Map<string, 'completed' | 'retry' | 'dead' | 'unknown'>> {
  const { rows } = await db.query<{ id: string; attempt: number; outcome: 'completed' | 'retry' | 'dead' | 'unknown' }>({
    name: 'sluice_job_ack_outcomes',
    text: `SELECT id, attempt, outcome FROM sluice.ack_outcomes($1::bigint[], $2::integer[], $3::text[], $4::text[], $5::bigint[])`,
    values: [
      acks.map((a) => a.id),
      acks.map((a) => a.attempt),
      acks.map((a) => a.queue),
      acks.map((a) => a.errorAt),
      acks.map((a) => a.lease),
    ],
  });
  return new Map(rows.map((r) => [`${r.id}:${r.attempt}`, r.outcome]));
}

/**
 * Gives claimed jobs that never started (or were cut short by shutdown) back
 * to their queue at once. The attempt is handed back too: it never ran to an
 * answer, so it must not count against the job's retry budget. Through
 * sluice.release_leases (leases/release.sql), which carries the plan settings
 * this statement could not on a pooled connection, and locks the jobs in id
 * order as every writer of several jobs does.
 */
export async function jobReleaseMany(
  db: Queryable,
  a: { ids: number[]; attempts: number[]; leases: number[]; workerId: string },
): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_job_release_many',
    text: `SELECT sluice.release_leases($1, $2::bigint[], $3::integer[], $4::bigint[]) AS n`,
    values: [a.workerId, a.ids, a.attempts, a.leases],
  });
  return Number(rows[0]?.n ?? 0);
}

/**
 * Gives back (as jobReleaseMany) every job of `queues` still running under
 * this worker that it does not hold: what a claim committed on the server
 * but whose answer never reached the worker (a connection lost, a statement
 * given up) left behind. Never sent while a claim of this worker is in flight,
 * whose jobs would look the same. Found through jobs_running_queue_idx (the
 * running jobs of these queues).
 */
export async function jobReleaseUnknownClaims(
  db: Queryable,
  a: { workerId: string; queues: string[]; heldIds: number[] },
): Promise<number> {
  const { rows } = await db.query<{ n: string }>({
    name: 'sluice_job_release_unknown_claims',
    text: `SELECT sluice.release_leases($1, array_agg(j.id ORDER BY j.id), array_agg(j.attempt ORDER BY j.id),
             array_agg(sluice.lease_token(j.attempted_at) ORDER BY j.id)) AS n
           FROM sluice.jobs j
           WHERE j.state = 'running' AND j.queue = ANY($2::text[]) AND j.locked_by = $1 AND j.id <> ALL($3::bigint[])
           HAVING count(*) > 0`,
    values: [a.workerId, a.queues, a.heldIds],
  });
  return Number(rows[0]?.n ?? 0);
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
