// Runtime SQL for the worker registry.
import type { Queryable } from '../executor.js';
import type { DeclaredSchedule } from './cron.js';

export interface WorkerRow {
  id: string;
  service: string | null;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  version: string;
  /** The names of the cron schedules it declares in code. */
  schedules: string[];
  /** Started with undeclaredSchedules 'remove'. */
  removesUndeclaredSchedules: boolean;
  /** Their definitions, as sluice.redeclare_schedules compares them with the stored ones. */
  scheduleDefinitions: DeclaredSchedule[];
}

/**
 * Writes the worker's row; returns its started_at (null the first time: now).
 * A worker registering again (the leader forgot it) passes the first one
 * back: started_at says which worker started last, whose schedule
 * definitions win (redeclarable.sql), and a pod of an old release back from
 * an hour's silence must not pass for the newest deploy.
 */
export async function workerRegister(db: Queryable, w: WorkerRow, startedAt: string | null): Promise<string> {
  // As text: a Date would round the server's microseconds to milliseconds.
  const { rows } = await db.query<{ started_at: string }>({
    name: 'sluice_worker_register',
    text: `INSERT INTO sluice.workers (id, service, host, pid, queues, concurrency, version, schedules, removes_undeclared_schedules,
             schedule_definitions, started_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, coalesce($11::timestamptz, now()))
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
           RETURNING started_at::text`,
    values: [
      w.id,
      w.service,
      w.host,
      w.pid,
      w.queues,
      w.concurrency,
      w.version,
      w.schedules,
      w.removesUndeclaredSchedules,
      JSON.stringify(w.scheduleDefinitions),
      startedAt,
    ],
  });
  return rows[0]!.started_at;
}

/**
 * What every beat answers besides the beat itself. `lost`: the held ids whose
 * lease it did not extend (usually none), and of those, `cancelled`: the ones
 * cancelled (kept in history as such). A job this worker still runs or
 * buffers and that is lost was cancelled, or rescued, retried, sent to the
 * dead jobs or completed by someone else: the worker stops it, its answer
 * being refused by the lease anyway. A held id whose acknowledgement
 * committed is lost too, and means nothing. `paused`: which of the given
 * queues are paused, so that the worker hands back the jobs of those it had
 * buffered.
 */
export interface BeatAnswer {
  lost: number[];
  cancelled: number[];
  paused: string[];
  /**
   * Whether the beat found this worker's row. The leader forgets workers
   * silent for an hour, a live one too when the database was out of reach
   * that long: such a worker registers again (its declarations are what keep
   * its schedules).
   */
  registered: boolean;
}

type BeatAnswerRow = { lost: string; cancelled: string; paused: string[] | null; registered: boolean };

// The held leases the beat extends, and the held ids it did not. The leases
// are extended by sluice.extend_leases (leases/extend.sql), which finds the
// held jobs by primary key whatever the statistics say: a setting this
// statement could not carry on a pooled connection.
// The held ids not started yet (buffered) are marked so, for the rescue.
const leasesCte = (unstarted: string) => `leases AS (SELECT l.id FROM sluice.extend_leases($1, $2, $3::bigint[], ${unstarted}::bigint[]) AS l(id)),
          lost AS (SELECT x AS id FROM unnest($3::bigint[]) x EXCEPT SELECT id FROM leases)`;

// Which lost ids were cancelled is asked of sluice.cancelled_jobs
// (jobs/cancelled.sql), never inferred from a row missing from sluice.jobs:
// a job the rescuer sent to the dead jobs, or one rescued and completed
// elsewhere, is missing too, and a row another transaction holds locked is
// not a cancel. The function reads history with a snapshot taken after the
// lease UPDATE (its argument), so a cancel that committed while that UPDATE
// waited for the row counts; this statement's own snapshot predates it. It
// opens nothing when nothing is lost, the usual case.
//
// A beat commits without waiting for the WAL flush (set here, in a column,
// as the beat is one statement and not a function). On the LISTEN session
// the wait was the worker's too: a session busy with a statement delivers no
// notification until it is idle again, so every wake-up that arrived while a
// beat waited for a slow disk (100 ms at the p99 of a busy one) waited with
// it. A beat that a server crash loses is a beat that failed: the one before
// it still holds the leases, and the worker beats again once it reconnects.
const answerColumns = (queues: string) => `set_config('synchronous_commit', 'off', true) AS unflushed,
          array_to_string(ARRAY(SELECT id FROM lost), ',') AS lost,
          array_to_string(ARRAY(SELECT c FROM sluice.cancelled_jobs(ARRAY(SELECT id FROM lost)) c), ',') AS cancelled,
          ARRAY(SELECT q.name FROM sluice.queues q WHERE q.name = ANY(${queues}::text[]) AND q.paused) AS paused,
          EXISTS (SELECT 1 FROM beat) AS registered`;

const idList = (text: string | undefined): number[] => (text ? text.split(',').map(Number) : []);

export function beatAnswer(row: BeatAnswerRow | undefined): BeatAnswer {
  return { lost: idList(row?.lost), cancelled: idList(row?.cancelled), paused: row?.paused ?? [], registered: row?.registered ?? true };
}

/**
 * Records a beat and extends the leases of the jobs this worker holds in
 * memory. Only those: a claim whose reply never arrived (lost connection)
 * is locked_by this worker too, and must lapse so the rescuer frees it.
 * A set locked_by means running (jobs_running_locked_check); the state is
 * left out so that the planner cannot read jobs_running_queue_idx, which a
 * transaction held open elsewhere fills with an entry for every job run since
 * (sluice.extend_leases).
 */
export async function workerHeartbeat(
  db: Queryable,
  workerId: string,
  leaseMs: number,
  heldIds: number[],
  queues: string[] = [],
  /** Of heldIds, those claimed and not started (see sluice.extend_leases). */
  unstartedIds: number[] = [],
): Promise<BeatAnswer> {
  // Unnamed, so planned for each beat with the table as it is now (see jobs/claim.sql, Plans).
  const { rows } = await db.query<BeatAnswerRow>({
    // Through the pool, no session is this worker's own: the rescuer then waits for the leases.
    text: `WITH beat AS (UPDATE sluice.workers SET heartbeat_at = now(), session_pid = NULL, session_lost_at = NULL, leads = false WHERE id = $1 RETURNING 1),
          ${leasesCte('$5')}
          SELECT ${answerColumns('$4')}`,
    values: [workerId, leaseMs, heldIds, queues, unstartedIds],
  });
  return beatAnswer(rows[0]);
}

// On the LISTEN session: the session's server process is recorded, so that
// the rescuer learns of this process's death when the session ends; and
// whether this worker leads (`leads`, an SQL expression), so that followers
// know a live leader stands behind the lock.
const sessionBeatCtes = (leads: string, unstarted: string) => `beat AS (UPDATE sluice.workers
            SET heartbeat_at = now(), session_pid = pg_backend_pid(), session_lost_at = NULL, leads = ${leads} WHERE id = $1 RETURNING 1),
          ${leasesCte(unstarted)}`;

/**
 * Per queue of this worker: how many live workers claim it and how many of
 * them sort before this one (its rank), as JSON [[queue, live, rank], ...],
 * for worker/wake.ts. Live: beat within deadAfterMs; this worker counts,
 * its beat being in the same statement. $1 is the worker id.
 */
const peersColumn = (queues: string, deadAfterMs: string) => `(SELECT json_agg(json_build_array(p.q, p.live, p.rank)) FROM (
          SELECT x.q, count(*)::int AS live, (count(*) FILTER (WHERE w.id < $1))::int AS rank
          FROM unnest(${queues}::text[]) x(q) JOIN sluice.workers w ON x.q = ANY(w.queues)
          WHERE w.id = $1 OR w.heartbeat_at > now() - ${deadAfterMs} * interval '1 millisecond'
          GROUP BY x.q) p) AS peers`;

/** What a beat on the LISTEN session answers besides the beat itself. */
export type PeersRow = BeatAnswerRow & { peers: [string, number, number][] | null };

/**
 * The beat as query arguments for the LISTEN session (not a Queryable): the
 * leader beats there, so its session's state_change shows it alive. `leads`:
 * whether this worker holds the leader's lock.
 */
export function workerHeartbeatOnSession(beat: SessionBeat, deadAfterMs: number, leads: boolean): [string, unknown[]] {
  return [
    `WITH ${sessionBeatCtes('$6', '$7')} SELECT ${peersColumn('$4', '$5')}, ${answerColumns('$4')}`,
    [beat.workerId, beat.leaseMs, beat.heldIds, beat.queues, deadAfterMs, leads, beat.unstartedIds],
  ];
}

/** A beat's own arguments: unstartedIds are those of heldIds claimed and not started. */
export interface SessionBeat {
  workerId: string;
  leaseMs: number;
  heldIds: number[];
  unstartedIds: number[];
  queues: string[];
}

/**
 * A follower's beat, for its LISTEN session: the same beat and peers, a try for the
 * maintenance leader's session advisory lock, and the end of a leader that
 * stopped beating (its session idle for longer than deadAfterMs: a frozen
 * process keeps its connection, and with it the lock) — one transaction.
 * `deposed` is true when such a leader's session was terminated; the lock is
 * free from the next beat on. The lock table is read only while no worker that
 * beats on its session says it leads with a fresh beat: a frozen leader's beat
 * goes stale, and a session left holding the lock by a leader that gave it up
 * (its connection went silent, or a winning bid's reply was lost) has no such
 * worker behind it. Reading pg_locks takes every lock-manager partition lock,
 * and 50 followers reading it on every beat stalled every other session's row
 * and advisory locks.
 */
export function workerHeartbeatTryLead(beat: SessionBeat, lockKey: number, deadAfterMs: number): [string, unknown[]] {
  return [
    `WITH bid AS (SELECT pg_try_advisory_lock($4) AS leader), ${sessionBeatCtes('(SELECT leader FROM bid)', '$7')}
     SELECT (SELECT leader FROM bid) AS leader, ${peersColumn('$6', '$5')}, ${answerColumns('$6')},
       CASE WHEN (SELECT leader FROM bid) THEN false
            WHEN NOT EXISTS (SELECT 1 FROM sluice.workers w
                              WHERE w.leads AND w.session_pid IS NOT NULL AND w.id <> $1
                                AND w.heartbeat_at >= now() - $5 * interval '1 millisecond')
       THEN (SELECT bool_or(pg_terminate_backend(a.pid))
          FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid = ($4 >> 32)::oid AND l.objid = ($4 & 4294967295)::oid
           AND a.pid <> pg_backend_pid() AND a.state = 'idle'
           AND a.state_change < now() - $5 * interval '1 millisecond') END AS deposed`,
    [beat.workerId, beat.leaseMs, beat.heldIds, lockKey, deadAfterMs, beat.queues, beat.unstartedIds],
  ];
}

/**
 * Ends the server process of a LISTEN session this worker gave up as stuck
 * (its own role's), waiting up to waitMs for it to exit, then clears it from
 * the worker's row if a late beat of that session recorded it there
 * meanwhile: once it is gone, the rescuer would take its end for the
 * process's death.
 */
export async function workerEndGivenUpSession(db: Queryable, workerId: string, pid: number, waitMs: number): Promise<void> {
  await db.query({
    name: 'sluice_worker_end_given_up_session',
    text: `SELECT pg_terminate_backend(a.pid, $2::bigint) FROM pg_stat_activity a WHERE a.pid = $1::integer AND a.usename = current_user`,
    values: [pid, waitMs],
  });
  await db.query({
    name: 'sluice_worker_forget_session',
    text: `UPDATE sluice.workers SET session_pid = NULL, session_lost_at = NULL WHERE id = $1 AND session_pid = $2`,
    values: [workerId, pid],
  });
}

/** Removes workers silent for longer than forgetAfterMs that hold no job. */
export async function workerReap(db: Queryable, forgetAfterMs: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'sluice_worker_reap',
    text: `SELECT sluice.reap_workers($1) AS n`,
    values: [forgetAfterMs],
  });
  return rows[0]?.n ?? 0;
}

/**
 * A stopping worker claims nothing more: its queues are cleared, so that the
 * other workers' wake windows, queue_stats and the no-worker alert stop
 * counting it while it finishes its jobs and keeps beating.
 */
export async function workerWithdraw(db: Queryable, workerId: string): Promise<void> {
  await db.query({
    name: 'sluice_worker_withdraw',
    text: `UPDATE sluice.workers SET queues = '{}' WHERE id = $1`,
    values: [workerId],
  });
}

export async function workerDeregister(db: Queryable, workerId: string): Promise<void> {
  await db.query({
    name: 'sluice_worker_deregister',
    text: `DELETE FROM sluice.workers WHERE id = $1`,
    values: [workerId],
  });
}
