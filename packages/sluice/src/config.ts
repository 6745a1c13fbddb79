// Option types, their defaults as named constants, and the validation of
// every option that comes from outside.
import { z } from 'zod';
import { ValidationError } from './errors.js';
import { UNSTORABLE_CHARS, escapeChar, unstorable } from './json-text.js';

/** Attempts a job gets before it moves to the dead-letter queue. */
export const MAX_ATTEMPTS_DEFAULT = 25;
/** Exponential from 1 s, doubling, capped at 1 h, ±10% jitter. */
export const BACKOFF_BASE_MS_DEFAULT = 1_000;
export const BACKOFF_FACTOR_DEFAULT = 2;
export const BACKOFF_MAX_MS_DEFAULT = 3_600_000;
export const BACKOFF_JITTER_DEFAULT = 0.1;
/** How long an enqueue to a full queue with overflow 'block' waits for room before QueueFullError. */
export const BLOCK_TIMEOUT_MS_DEFAULT = 30_000;
/** Largest payload accepted at enqueue, in bytes of its JSON text (1 MiB). */
export const MAX_PAYLOAD_BYTES_DEFAULT = 1_048_576;
export const QUEUE_DEFAULT = 'default';
export const PRIORITY_DEFAULT = 0;

/** Jobs one worker process runs at once. */
export const CONCURRENCY_DEFAULT = 10;
/** How often a worker looks for jobs when no notification arrived. */
export const POLL_INTERVAL_MS_DEFAULT = 1_000;
/**
 * A worker whose heartbeat is older than this is dead, and its running jobs
 * are rescued. It is also the lease of a claim, renewed by each heartbeat.
 */
export const WORKER_DEAD_AFTER_MS_DEFAULT = 15_000;
/** Workers gone this long (and holding no job) are removed from sluice.workers. */
export const WORKER_FORGET_AFTER_MS_DEFAULT = 3_600_000;
/** How often the maintenance leader forgets workers and removes the schedules no known worker declares, in milliseconds. */
export const WORKER_REAP_INTERVAL_MS_DEFAULT = 60_000;
/** Jobs rescued per statement. */
export const RESCUE_BATCH_SIZE_DEFAULT = 1_000;
/** Acknowledgements waiting to be written before new jobs stop starting. */
export const MAX_PENDING_ACKS_DEFAULT = 1_000;
/** How often a worker writes its heartbeat. */
export const HEARTBEAT_INTERVAL_MS_DEFAULT = 5_000;
/** Connections in a pool sluice creates itself. */
export const POOL_SIZE_DEFAULT = 4;
/**
 * A pool connection unused this long is closed, so an idle worker holds only
 * what it uses. Longer than an idle worker's longest poll wait (30 s): a
 * connection opened for each poll would cost more than the poll itself.
 */
export const POOL_IDLE_TIMEOUT_MS_DEFAULT = 60_000;
/** After a job's signal fires, how long its handler may wind down before its slot is freed. */
export const ABORT_GRACE_MS_DEFAULT = 1_000;
/** Largest handler result stored, in bytes of its JSON text (64 KiB). */
export const MAX_RESULT_BYTES_DEFAULT = 65_536;
/** Due scheduled jobs promoted per statement. */
export const PROMOTE_BATCH_SIZE_DEFAULT = 1_000;
/** Longest a worker waits for running jobs on stop() before releasing them. */
export const SHUTDOWN_TIMEOUT_MS_DEFAULT = 30_000;
/**
 * How long worker.start() keeps retrying a database it cannot reach before
 * it gives up with DatabaseUnavailableError: no limit (until stop()).
 */
export const START_TIMEOUT_MS_DEFAULT = Number.POSITIVE_INFINITY;

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const NAME_RULE = 'must be 1-128 characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit';

export const nameSchema = z.string().regex(NAME_PATTERN, NAME_RULE);

/** Checks a queue, job or schedule name; throws ValidationError naming the field. */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw new ValidationError(field, NAME_RULE);
  }
  return value;
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const STORABLE_TEXT_RULE = 'must not contain a NUL character or an unpaired surrogate (PostgreSQL cannot store it as it is)';

/** A string PostgreSQL stores as given: text refuses NUL, and UTF-8 cannot carry a lone surrogate (it would become U+FFFD). */
export const storableString = (min: number, max: number) =>
  z.string().min(min).max(max).refine((s) => !unstorable(s), STORABLE_TEXT_RULE);

export const backoffSchema = z.strictObject({
  kind: z.enum(['fixed', 'exponential']),
  baseMs: int(0, 2_147_483_647).optional(),
  factor: z.number().min(1).max(10).optional(),
  maxMs: int(0, 2_147_483_647).optional(),
  jitter: z.number().min(0).max(1).optional(),
});

export type BackoffPolicy = z.infer<typeof backoffSchema>;
/** A custom policy: milliseconds to wait before the given attempt's retry. */
export type BackoffFunction = (attempt: number, error: unknown) => number;

/** Named priorities; higher runs first. Aging never lifts a job above critical. */
export const PRIORITIES = { critical: 20, high: 10, normal: 0, low: -10 } as const;
export type PriorityName = keyof typeof PRIORITIES;

export const prioritySchema = z.union([int(-32768, 32767), z.enum(['critical', 'high', 'normal', 'low'])]);

/** A job priority as stored: a named priority becomes its number. */
export function priorityValue(p: number | PriorityName): number {
  return typeof p === 'number' ? p : PRIORITIES[p];
}

// A Date can reach 271,821 BC; PostgreSQL's timestamptz cannot, and
// node-postgres writes years outside 1-9999 in forms not every server reads.
/** 0001-01-01T00:00:00Z (Date.UTC reads the year 1 as 1901). */
const RUN_AT_MIN_MS = -62_135_596_800_000;
const RUN_AT_MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Longest history retention: 100 years (retention is subtracted from now(), which must stay a timestamp). */
export const RETENTION_MS_MAX = 3_155_760_000_000;

export const jobOptionsSchema = z.strictObject({
  name: nameSchema,
  queue: nameSchema.optional(),
  maxAttempts: int(1, 1000).optional(),
  timeoutMs: int(1, 2_147_483_647).optional(),
  priority: prioritySchema.optional(),
});

export const enqueueOptionsSchema = z.strictObject({
  tx: z.any().optional(),
  runAt: z
    .date()
    .refine((d) => !Number.isNaN(d.getTime()), 'must be a valid Date')
    .refine((d) => Number.isNaN(d.getTime()) || (d.getTime() >= RUN_AT_MIN_MS && d.getTime() <= RUN_AT_MAX_MS), 'must be between the years 1 and 9999')
    .optional(),
  delayMs: z.number().finite().min(0).max(2_147_483_647 * 1000).optional(),
  priority: prioritySchema.optional(),
  maxAttempts: int(1, 1000).optional(),
  timeoutMs: int(1, 2_147_483_647).optional(),
  uniqueKey: storableString(1, 512).optional(),
  uniqueWindowMs: int(1, 2_147_483_647).optional(),
  tags: z.array(storableString(1, 128)).max(32).optional(),
  groupKey: storableString(1, 256).optional(),
  dependsOn: z.array(z.number().int().positive().max(Number.MAX_SAFE_INTEGER)).max(1000).optional(),
  onParentDead: z.enum(['dead', 'cancel']).optional(),
  blockTimeoutMs: int(0, 2_147_483_647).optional(),
});

export const queueSettingsSchema = z.strictObject({
  paused: z.boolean().optional(),
  concurrency: int(1, 1_000_000).nullable().optional(),
  groupConcurrency: int(1, 1_000_000).nullable().optional(),
  rateLimit: z.strictObject({ count: int(1, 1_000_000_000), intervalMs: int(1, 2_147_483_647) }).nullable().optional(),
  maxDepth: int(1, 2_000_000_000).nullable().optional(),
  overflow: z.enum(['reject', 'block', 'drop_oldest', 'drop_newest']).optional(),
  weight: int(1, 1_000_000).optional(),
  agingAfterMs: int(1, 2_147_483_647).nullable().optional(),
  uniqueWindowMs: int(1, 2_147_483_647).nullable().optional(),
  keepHistory: z.boolean().optional(),
  retentionMs: int(0, RETENTION_MS_MAX).optional(),
  alertMaxDepth: int(1, 2_000_000_000).nullable().optional(),
  alertMaxWaitMs: int(1, 2_147_483_647).nullable().optional(),
  // Stored as real: a rate under about 1e-38 would not fit, and none that small means anything.
  alertMaxErrorRate: z.number().min(0).max(1).refine((v) => v === 0 || v >= 1e-6, 'must be 0 or at least 0.000001').nullable().optional(),
  alertNoWorker: z.boolean().optional(),
});
export type QueueSettings = z.infer<typeof queueSettingsSchema>;

export const workerOptionsSchema = z.strictObject({
  concurrency: int(1, 10_000).optional(),
  queues: z.array(nameSchema).min(1).optional(),
  pollIntervalMs: int(10, 3_600_000).optional(),
  workerDeadAfterMs: int(1_000, 86_400_000).optional(),
  maxRssBytes: int(16 * 1024 * 1024, Number.MAX_SAFE_INTEGER).optional(),
  maxPendingAcks: int(1, 1_000_000).optional(),
  heartbeatIntervalMs: int(100, 3_600_000).optional(),
  shutdownTimeoutMs: int(0, 86_400_000).optional(),
  startTimeoutMs: int(0, 2_147_483_647).optional(),
  abortGraceMs: int(0, 3_600_000).optional(),
  maxResultBytes: int(0, 100 * 1024 * 1024).optional(),
  prefetch: int(0, 100_000).optional(),
  service: storableString(0, 128).optional(),
});

/** Turns a zod failure into a ValidationError that names the first bad field. */
export function parseOptions<T>(schema: z.ZodType<T>, value: unknown, prefix: string): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  // zod quotes unknown keys: one holding a NUL must not carry it into the message (and the logs).
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.').replace(UNSTORABLE_CHARS, escapeChar);
  throw new ValidationError(path, issue.message.replace(UNSTORABLE_CHARS, escapeChar), { cause: result.error });
}
