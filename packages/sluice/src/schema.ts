// The one source of truth for the table shapes. drizzle-kit generates the
// migrations in drizzle/ from this file; functions and views live in the
// custom SQL migrations beside them.
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  real,
  smallint,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import type { JobErrorEntry } from './job-record.js';
import type { ScheduledJobOptions } from './schedule.js';

// Declared where drizzle-orm is not needed: importing sluice (or its types) never loads it.
export type { JobErrorEntry, ScheduledJobOptions };

export const sluiceSchema = pgSchema('sluice');

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

// A name is a queue, job or schedule name: short, printable, no spaces; the
// rule of NAME_PATTERN (config.ts). The length is a separate test: a counted
// repeat ({0,127}) costs PostgreSQL's regex engine ~10x more per row.
const NAME_CHECK = (column: string) =>
  sql.raw(`${column} ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(${column}) <= 128`);

/** Live jobs only: scheduled, available, running. Finished rows leave this table. */
export const jobs = sluiceSchema.table(
  'jobs',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    queue: text('queue').notNull(),
    name: text('name').notNull(),
    payload: jsonb('payload').notNull().default({}),
    priority: smallint('priority').notNull().default(0),
    runAt: tstz('run_at').notNull().defaultNow(),
    attempt: integer('attempt').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(25),
    backoffKind: text('backoff_kind').notNull().default('exponential'),
    backoffBaseMs: integer('backoff_base_ms').notNull().default(1000),
    backoffFactor: real('backoff_factor').notNull().default(2),
    backoffMaxMs: integer('backoff_max_ms').notNull().default(3_600_000),
    backoffJitter: real('backoff_jitter').notNull().default(0.1),
    timeoutMs: integer('timeout_ms'),
    state: text('state').notNull().default('available'),
    lockedBy: text('locked_by'),
    lockedUntil: tstz('locked_until'),
    attemptedAt: tstz('attempted_at'),
    // When a beat last found the job claimed and not yet started (buffered):
    // later than attempted_at, the claim's run had not begun at that beat.
    bufferedAt: tstz('buffered_at'),
    uniqueKey: text('unique_key'),
    groupKey: text('group_key'),
    progress: smallint('progress'),
    progressMessage: text('progress_message'),
    dependsOn: bigint('depends_on', { mode: 'number' }).array(),
    /** What happens to this job when a parent dies: 'dead' (default) or 'cancel'. */
    onParentDead: text('on_parent_dead').notNull().default('dead'),
    batchId: bigint('batch_id', { mode: 'number' }),
    /** Set by waitFor(): the job's end is announced on sluice_finished. */
    notifyOnFinish: boolean('notify_on_finish').notNull().default(false),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    errors: jsonb('errors').$type<JobErrorEntry[]>().notNull().default([]),
    createdAt: tstz('created_at').notNull().defaultNow(),
    /**
     * When an aged job first became due. Aging moves run_at later as it
     * raises the priority (so the claim index keeps the order); the wait is
     * still counted from here. NULL until the first aging step.
     */
    readyAt: tstz('ready_at'),
  },
  (t) => [
    // The claim index holds only claimable rows, so it stays small however
    // many jobs wait for a future time. DESC NULLS FIRST is what
    // `ORDER BY priority DESC` means; any other order forces a sort.
    index('jobs_claim_idx')
      .on(t.queue, t.priority.desc().nullsFirst(), t.runAt, t.id)
      .where(sql`state = 'available'`),
    index('jobs_scheduled_idx').on(t.runAt).where(sql`state = 'scheduled'`),
    // Running jobs per queue and group: what the concurrency limits count.
    index('jobs_running_queue_idx').on(t.queue, t.groupKey).where(sql`state = 'running'`),
    // Claim order within each group, for queues with a per-group limit.
    index('jobs_group_claim_idx')
      .on(t.queue, t.groupKey, t.priority.desc().nullsFirst(), t.runAt, t.id)
      .where(sql`state = 'available' AND group_key IS NOT NULL`),
    index('jobs_waiting_deps_idx').using('gin', t.dependsOn).where(sql`state = 'waiting'`),
    // Tiny while nothing waits: lets a completion ask "does anything wait at all?" for free.
    index('jobs_waiting_idx').on(t.id).where(sql`state = 'waiting'`),
    uniqueIndex('jobs_unique_key_idx')
      .on(t.queue, t.uniqueKey)
      .where(sql`unique_key IS NOT NULL`),
    // The oldest wait of a queue among its aged jobs (few), beside the claim index's walk.
    index('jobs_aged_idx')
      .on(t.queue, t.readyAt)
      .where(sql`state = 'available' AND ready_at IS NOT NULL`),
    check('jobs_state_check', sql`state IN ('waiting', 'scheduled', 'available', 'running')`),
    check('jobs_on_parent_dead_check', sql`on_parent_dead IN ('dead', 'cancel')`),
    check('jobs_running_locked_check', sql`(state = 'running') = (locked_by IS NOT NULL)`),
    check('jobs_attempt_check', sql`attempt >= 0 AND attempt <= max_attempts`),
    check('jobs_max_attempts_check', sql`max_attempts BETWEEN 1 AND 1000`),
    check('jobs_name_check', NAME_CHECK('name')),
    check('jobs_queue_check', NAME_CHECK('queue')),
    check('jobs_backoff_check', sql`backoff_kind IN ('fixed', 'exponential') AND backoff_base_ms >= 0 AND backoff_max_ms >= 0 AND backoff_factor BETWEEN 1 AND 10 AND backoff_jitter BETWEEN 0 AND 1`),
    check('jobs_timeout_check', sql`timeout_ms IS NULL OR timeout_ms > 0`),
  ],
);

/**
 * Finished jobs (completed, cancelled, dropped). Range-partitioned by
 * finished_at (one partition a day) in the migration, so retention drops whole
 * partitions instead of deleting rows.
 */
export const jobHistory = sluiceSchema.table(
  'job_history',
  {
    id: bigint('id', { mode: 'number' }).notNull(),
    queue: text('queue').notNull(),
    name: text('name').notNull(),
    payload: jsonb('payload').notNull(),
    priority: smallint('priority').notNull(),
    attempt: integer('attempt').notNull(),
    maxAttempts: integer('max_attempts').notNull(),
    state: text('state').notNull(),
    errors: jsonb('errors').$type<JobErrorEntry[]>().notNull().default([]),
    result: jsonb('result'),
    uniqueKey: text('unique_key'),
    batchId: bigint('batch_id', { mode: 'number' }),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    createdAt: tstz('created_at').notNull(),
    runAt: tstz('run_at').notNull(),
    attemptedAt: tstz('attempted_at'),
    finishedAt: tstz('finished_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.finishedAt] }),
    index('job_history_unique_key_idx').on(t.queue, t.uniqueKey, t.finishedAt).where(sql`unique_key IS NOT NULL`),
    index('job_history_queue_idx').on(t.queue, t.finishedAt),
    check('job_history_state_check', sql`state IN ('completed', 'cancelled', 'dropped')`),
  ],
);

/** The dead-letter queue: kept until replayed or purged. */
export const deadJobs = sluiceSchema.table(
  'dead_jobs',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    queue: text('queue').notNull(),
    name: text('name').notNull(),
    payload: jsonb('payload').notNull(),
    priority: smallint('priority').notNull(),
    attempt: integer('attempt').notNull(),
    maxAttempts: integer('max_attempts').notNull(),
    backoffKind: text('backoff_kind').notNull(),
    backoffBaseMs: integer('backoff_base_ms').notNull(),
    backoffFactor: real('backoff_factor').notNull(),
    backoffMaxMs: integer('backoff_max_ms').notNull(),
    backoffJitter: real('backoff_jitter').notNull(),
    timeoutMs: integer('timeout_ms'),
    uniqueKey: text('unique_key'),
    groupKey: text('group_key'),
    batchId: bigint('batch_id', { mode: 'number' }),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    errors: jsonb('errors').$type<JobErrorEntry[]>().notNull().default([]),
    reason: text('reason').notNull(),
    createdAt: tstz('created_at').notNull(),
    runAt: tstz('run_at').notNull(),
    attemptedAt: tstz('attempted_at'),
    diedAt: tstz('died_at').notNull().defaultNow(),
    /** Kept from the live job so that a replay waits for the parents again (sluice.dead_replay). */
    dependsOn: bigint('depends_on', { mode: 'number' }).array(),
    onParentDead: text('on_parent_dead').notNull().default('dead'),
  },
  (t) => [
    index('dead_jobs_queue_idx').on(t.queue, t.diedAt),
    check('dead_jobs_reason_check', sql`reason IN ('exhausted', 'permanent', 'crashed', 'parent_dead')`),
    check('dead_jobs_on_parent_dead_check', sql`on_parent_dead IN ('dead', 'cancel')`),
  ],
);

/** One row per queue, created on first use. */
export const queues = sluiceSchema.table(
  'queues',
  {
    name: text('name').primaryKey(),
    paused: boolean('paused').notNull().default(false),
    concurrency: integer('concurrency'),
    groupConcurrency: integer('group_concurrency'),
    rateLimitCount: integer('rate_limit_count'),
    rateLimitIntervalMs: integer('rate_limit_interval_ms'),
    /**
     * The rate limit's sliding log: claims of the last rate_limit_interval_ms,
     * merged into at most ~100 entries, each its first and last claim time
     * (epoch microseconds) and how many jobs it took. See sluice.claim.
     */
    rateLogFirstUs: bigint('rate_log_first_us', { mode: 'number' }).array().notNull().default(sql`'{}'`),
    rateLogLastUs: bigint('rate_log_last_us', { mode: 'number' }).array().notNull().default(sql`'{}'`),
    rateLogTaken: integer('rate_log_taken').array().notNull().default(sql`'{}'`),

    maxDepth: integer('max_depth'),
    overflow: text('overflow').notNull().default('reject'),
    weight: integer('weight').notNull().default(1),
    /** A job waiting longer than this gains priority (one step per period); NULL turns aging off. */
    agingAfterMs: integer('aging_after_ms'),
    /** How long a completed job's uniqueKey still blocks a duplicate; NULL: only while live. */
    uniqueWindowMs: integer('unique_window_ms'),
    alertMaxDepth: integer('alert_max_depth'),
    alertMaxWaitMs: integer('alert_max_wait_ms'),
    /** Failed attempts / finished attempts over the last 5 minutes, 0..1. */
    alertMaxErrorRate: real('alert_max_error_rate'),
    alertNoWorker: boolean('alert_no_worker').notNull().default(false),
    keepHistory: boolean('keep_history').notNull().default(true),
    retentionMs: bigint('retention_ms', { mode: 'number' }).notNull().default(7 * 24 * 3600 * 1000),
    createdAt: tstz('created_at').notNull().defaultNow(),
  },
  (t) => [
    check('queues_name_check', NAME_CHECK('name')),
    check('queues_overflow_check', sql`overflow IN ('reject', 'block', 'drop_oldest', 'drop_newest')`),
    check('queues_weight_check', sql`weight >= 1`),
    check('queues_limits_check', sql`(concurrency IS NULL OR concurrency >= 1) AND (group_concurrency IS NULL OR group_concurrency >= 1) AND (max_depth IS NULL OR max_depth >= 1) AND (aging_after_ms IS NULL OR aging_after_ms >= 1) AND ((rate_limit_count IS NULL) = (rate_limit_interval_ms IS NULL)) AND (rate_limit_count IS NULL OR (rate_limit_count >= 1 AND rate_limit_interval_ms >= 1))`),
  ],
);

/**
 * Defaults per job name, written when a worker or client registers its job
 * definitions, so `sluice.enqueue(...)` from SQL lands in the same queue with
 * the same retry policy as an enqueue from TypeScript.
 */
export const jobTypes = sluiceSchema.table(
  'job_types',
  {
    name: text('name').primaryKey(),
    queue: text('queue').notNull(),
    priority: smallint('priority').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    backoffKind: text('backoff_kind').notNull(),
    backoffBaseMs: integer('backoff_base_ms').notNull(),
    backoffFactor: real('backoff_factor').notNull(),
    backoffMaxMs: integer('backoff_max_ms').notNull(),
    backoffJitter: real('backoff_jitter').notNull(),
    timeoutMs: integer('timeout_ms'),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [check('job_types_name_check', NAME_CHECK('name')), check('job_types_queue_check', NAME_CHECK('queue'))],
);

/** One row per worker process. */
export const workers = sluiceSchema.table('workers', {
  id: text('id').primaryKey(),
  service: text('service'),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  queues: text('queues').array().notNull(),
  concurrency: integer('concurrency').notNull(),
  version: text('version').notNull(),
  startedAt: tstz('started_at').notNull().defaultNow(),
  heartbeatAt: tstz('heartbeat_at').notNull().defaultNow(),
  /**
   * The server process of the worker's LISTEN session, set by each beat on that
   * session (NULL while it beats through the pool): when that session ends
   * while the server keeps running, the worker's process is gone, and the
   * rescuer need not wait for its leases (jobs/rescue-expired.sql).
   */
  sessionPid: integer('session_pid'),
  /** When the rescuer first found that session gone; cleared by the next beat. */
  sessionLostAt: tstz('session_lost_at'),
  /**
   * Whether this worker held the maintenance leader's lock at its last beat on
   * its session. Followers read the lock table to end a leader's dead session
   * only while no worker with a fresh beat on its session says it leads
   * (worker/leadership.ts): a cheap test on every follower's beat.
   */
  leads: boolean('leads').notNull().default(false),
  /**
   * The names of the cron schedules this worker declares in code, and whether
   * it was started with undeclaredSchedules 'remove'. A code schedule is
   * removed only while no known worker of its service declares it, and some
   * known one removes (cron-schedules/undeclared.sql): in a rolling deploy, the
   * old and the new code's schedules both stay until the last pod of one
   * version is gone. NULL (a worker that did not say): it keeps every one.
   */
  schedules: text('schedules').array(),
  removesUndeclaredSchedules: boolean('removes_undeclared_schedules').notNull().default(false),
  /**
   * The definitions of those schedules, as it writes them at its start. Once
   * no known worker of the service declares a code schedule's stored
   * definition any more, it takes the definition of the last started known
   * worker that declares the name (cron-schedules/redeclare.sql): an old pod
   * restarted mid-rollout no longer leaves its expression in place after the
   * rollout. NULL (a worker that did not say): its declarations are not known.
   */
  scheduleDefinitions: jsonb('schedule_definitions'),
});

export const cronSchedules = sluiceSchema.table(
  'cron_schedules',
  {
    name: text('name').primaryKey(),
    cron: text('cron').notNull(),
    timezone: text('timezone').notNull().default('UTC'),
    jobName: text('job_name').notNull(),
    payload: jsonb('payload').notNull().default({}),
    enabled: boolean('enabled').notNull().default(true),
    misfire: text('misfire').notNull().default('run_once'),
    /** Most recent missed fire times enqueued by the run_all policy. */
    runAllCap: integer('run_all_cap').notNull().default(100),
    /** NULL until a scheduler computes it, so a row inserted by plain SQL is picked up. */
    nextRunAt: tstz('next_run_at'),
    lastRunAt: tstz('last_run_at'),
    /** Why the last fire failed (the job could not be enqueued), or why a scheduler disabled the row. */
    lastError: text('last_error'),
    /** Fires failed in a row; the retry waits longer after each. */
    failCount: integer('fail_count').notNull().default(0),
    /** After a failed fire, no retry before this. */
    retryAt: tstz('retry_at'),
    /**
     * The job's queue and retry options, from the job definition the schedule
     * was built with ({ queue, priority, maxAttempts, timeoutMs, backoff });
     * NULL for a schedule added by job name, which takes sluice.job_types.
     */
    jobOptions: jsonb('job_options').$type<ScheduledJobOptions>(),
    /** 'code' when a worker declares it, 'sql' when added by SQL, the CLI or the API. */
    declaredIn: text('declared_in').notNull().default('sql'),
    /** The worker `service` that declares it in code (NULL: a worker without a service, or not declared in code). */
    service: text('service'),
    createdAt: tstz('created_at').notNull().defaultNow(),
    updatedAt: tstz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    index('cron_schedules_due_idx').on(t.nextRunAt).where(sql`enabled`),
    check('cron_schedules_name_check', NAME_CHECK('name')),
    check('cron_schedules_misfire_check', sql`misfire IN ('skip', 'run_once', 'run_all')`),
    check('cron_schedules_job_name_check', NAME_CHECK('job_name')),
    check('cron_schedules_run_all_cap_check', sql`run_all_cap BETWEEN 1 AND 10000`),
    check('cron_schedules_declared_in_check', sql`declared_in IN ('code', 'sql')`),
  ],
);

export const metricsMinutely = sluiceSchema.table(
  'metrics_minutely',
  {
    queue: text('queue').notNull(),
    minute: tstz('minute').notNull(),
    /**
     * The writer's server process id: each session adds to a row of its own, so no two
     * sessions ever wait on one row (a producer's open transaction holds its row until it ends).
     */
    shard: integer('shard').notNull().default(0),
    enqueued: bigint('enqueued', { mode: 'number' }).notNull().default(0),
    completed: bigint('completed', { mode: 'number' }).notNull().default(0),
    failed: bigint('failed', { mode: 'number' }).notNull().default(0),
    retried: bigint('retried', { mode: 'number' }).notNull().default(0),
    dead: bigint('dead', { mode: 'number' }).notNull().default(0),
    cancelled: bigint('cancelled', { mode: 'number' }).notNull().default(0),
    waitMsSum: bigint('wait_ms_sum', { mode: 'number' }).notNull().default(0),
    waitMsMax: bigint('wait_ms_max', { mode: 'number' }).notNull().default(0),
    runMsSum: bigint('run_ms_sum', { mode: 'number' }).notNull().default(0),
    runMsMax: bigint('run_ms_max', { mode: 'number' }).notNull().default(0),
    /** Of `failed`, the attempts ended by the rescuer: they have no wait or run time, so the averages leave them out. */
    rescued: bigint('rescued', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.queue, t.minute, t.shard] }), index('metrics_minutely_minute_idx').on(t.minute)],
);

/** A group of jobs enqueued together; when all are finished its callback job runs with the counts. */
export const batches = sluiceSchema.table(
  'batches',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    total: integer('total').notNull(),
    completed: integer('completed').notNull().default(0),
    dead: integer('dead').notNull().default(0),
    cancelled: integer('cancelled').notNull().default(0),
    onCompleteJob: text('on_complete_job'),
    onCompletePayload: jsonb('on_complete_payload'),
    callbackJobId: bigint('callback_job_id', { mode: 'number' }),
    createdAt: tstz('created_at').notNull().defaultNow(),
    finishedAt: tstz('finished_at'),
  },
  (t) => [check('batches_counts_check', sql`completed + dead + cancelled <= total`)],
);

/** Which job each topic's events fan out to; written by workers on start. */
export const subscriptions = sluiceSchema.table(
  'subscriptions',
  {
    topic: text('topic').notNull(),
    jobName: text('job_name').notNull(),
    createdAt: tstz('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.topic, t.jobName] }),
    check('subscriptions_topic_check', NAME_CHECK('topic')),
    check('subscriptions_job_name_check', NAME_CHECK('job_name')),
  ],
);

/**
 * Signed-in dashboard sessions. The cookie is signed, and its session must
 * also be here: signing out deletes the row, so a copied cookie stops working
 * at once, on every dashboard instance sharing the database. The id is a hash
 * of the cookie's random part, so reading this table does not yield a cookie.
 */
export const dashboardSessions = sluiceSchema.table(
  'dashboard_sessions',
  {
    id: text('id').primaryKey(),
    createdAt: tstz('created_at').notNull().defaultNow(),
    expiresAt: tstz('expires_at').notNull(),
  },
  (t) => [index('dashboard_sessions_expires_at_idx').on(t.expiresAt)],
);

/**
 * The alerts last reported firing, one row per queue and alert. The leader's
 * alert watcher compares the alerts active now with these rows and changes
 * them in the same statement that decides what to report, so a new leader
 * carries on where the old one stopped (services/alert-watcher.ts). `value`,
 * `threshold` and `message` are the alert's when it started firing.
 */
export const alertStates = sluiceSchema.table(
  'alert_states',
  {
    queue: text('queue').notNull(),
    alert: text('alert').notNull(),
    value: doublePrecision('value').notNull(),
    threshold: doublePrecision('threshold').notNull(),
    message: text('message').notNull(),
    firingSince: tstz('firing_since').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.queue, t.alert] })],
);
