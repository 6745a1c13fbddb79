// Cron schedules: the definition, its validation, and the fire times of an
// expression in its time zone (cron-parser does the calendar arithmetic).
import { z } from 'zod';
import {
  MAX_PAYLOAD_BYTES_DEFAULT,
  STORABLE_TEXT_RULE,
  backoffSchema,
  checkName,
  jobOptionsSchema,
  nameSchema,
  parseOptions,
  prioritySchema,
  priorityValue,
} from './config.js';
import { OptionsConflictError, PayloadTooLargeError, SluiceError, ValidationError } from './errors.js';
import type { AnyJob, JobPayload } from './job.js';
import { jsonText, unstorable } from './json-text.js';
import { cronParser } from './optional-deps.js';
import { safeParse } from './zod-schema.js';

/** What a schedule built from a job definition enqueues with (see cron_schedules.job_options). */
export interface ScheduledJobOptions {
  queue: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  backoff: { kind: 'fixed' | 'exponential'; baseMs: number; factor: number; maxMs: number; jitter: number };
}

export type MisfirePolicy = 'skip' | 'run_once' | 'run_all';

/** Default policy when fire times were missed (system down or behind): one catch-up run. */
export const MISFIRE_DEFAULT: MisfirePolicy = 'run_once';
/** Under `skip`, a fire this late or less still counts as on time. */
export const MISFIRE_GRACE_MS_DEFAULT = 60_000;
/** Under `run_all`, at most this many missed fires are enqueued (the most recent). */
export const RUN_ALL_CAP_DEFAULT = 100;
export const TIMEZONE_DEFAULT = 'UTC';
/** After a fire fails (its job could not be enqueued), the first retry waits this long; each further failure doubles it. */
export const CRON_RETRY_BASE_MS_DEFAULT = 1_000;
/** The longest wait between retries of a failing schedule. */
export const CRON_RETRY_MAX_MS_DEFAULT = 60_000;

const PRESETS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly', '@minutely', '@secondly', '@weekdays', '@weekends'];

export function checkTimezone(field: string, tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ValidationError(field, `unknown IANA time zone "${tz.slice(0, 64)}"`);
  }
  return tz;
}

/** Throws ValidationError naming the field when the expression is not 5 or 6 fields or a preset. */
export function checkCron(field: string, expression: unknown, timezone = TIMEZONE_DEFAULT): string {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new ValidationError(field, 'must be a cron expression of 5 or 6 fields, or a preset like @hourly');
  }
  const expr = expression.trim();
  if (expr.startsWith('@')) {
    if (!PRESETS.includes(expr)) throw new ValidationError(field, `unknown preset; use one of ${PRESETS.join(', ')}`);
  } else {
    const fields = expr.split(/\s+/).length;
    if (fields !== 5 && fields !== 6) throw new ValidationError(field, `has ${fields} fields; expected 5 (minute first) or 6 (second first)`);
  }
  try {
    cronParser().CronExpressionParser.parse(expr, { tz: timezone, currentDate: new Date() }).next();
  } catch (err) {
    throw new ValidationError(field, (err as Error).message, { cause: err });
  }
  return expr;
}

/** Times nextFireAfter asks cron-parser again, each from twice as far past the instant (1 s, 3 s, 7 s, ...): about three days in all. */
const NEXT_FIRE_RETRIES = 18;

/**
 * cron-parser found no fire time after a given instant. The expression and
 * zone themselves parse (a schedule that cannot be read is a
 * ValidationError): the calendar arithmetic failed around that instant.
 */
export class NoNextFireError extends SluiceError {
  override name = 'NoNextFireError';
}

/**
 * The first fire time strictly after `after`. Around some DST changes
 * (Australia/Lord_Howe's half-hour fall-back) cron-parser answers a time that
 * is not after the instant it was given, or gives up ("loop limit exceeded");
 * taken as it is, a schedule's next run would never move on and the same fire
 * would be enqueued again and again. Asked again from a little later, it
 * answers right: a fire inside the stretch stepped over is lost, never repeated.
 */
export function nextFireAfter(cron: string, timezone: string, after: Date): Date {
  const parser = cronParser().CronExpressionParser;
  // A bad expression or zone throws here, at once.
  let times = parser.parse(cron, { tz: timezone, currentDate: after });
  let from = after.getTime();
  let last: unknown;
  for (let retry = 1; ; retry++) {
    try {
      const t = times.next().toDate();
      if (t.getTime() > after.getTime()) return t;
    } catch (err) {
      last = err;
    }
    if (retry > NEXT_FIRE_RETRIES) {
      throw new NoNextFireError(`no fire time after ${after.toISOString()} in ${timezone}`, { cause: last });
    }
    from += 1_000 * 2 ** (retry - 1);
    times = parser.parse(cron, { tz: timezone, currentDate: new Date(from) });
  }
}

/**
 * A fire time after `first` with at least `limit` fire times after it up to
 * `until`, to start a long catch-up from rather than step through all of it;
 * null when there is none. Also null where cron-parser fails to walk back
 * (around some DST changes): stepping from `first` is slower, never wrong.
 */
function catchUpStart(cron: string, timezone: string, first: Date, until: Date, limit: number): Date | null {
  const back = cronParser().CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(until.getTime() + 1) });
  let t: Date | null = null;
  for (let i = 0; i <= limit; i++) {
    try {
      t = back.prev().toDate();
    } catch {
      return null;
    }
    if (t <= first) return null;
  }
  return t;
}

export interface DueFireTimes {
  /** Up to `limit` fire times from `from` to `until`, the most recent ones, oldest first. */
  due: Date[];
  /** The fire time after them, the first after `until`: the schedule's next_run_at. */
  next: Date;
}

/**
 * The fire times due from `from` (a schedule's next_run_at, itself due) to
 * `until` (now), and the one to wait for next. Each comes from the one before
 * it by nextFireAfter, the step that computed next_run_at: cron-parser's
 * answer depends on where it is asked from. From before a spring-forward gap
 * it answers the fire the gap shifted (03:30 for a 02:30 that does not exist),
 * from just before that fire it skips to the next day; from inside a
 * fall-back's repeated hour it answers the repeated time. A fresh walk of the
 * expression from next_run_at lost the shifted fire; stepping from fire to
 * fire finds each fire once.
 */
export function dueFireTimes(cron: string, timezone: string, from: Date, until: Date, limit: number): DueFireTimes {
  const start = catchUpStart(cron, timezone, from, until, limit);
  if (start) {
    const fromStart = stepDueFireTimes(cron, timezone, nextFireAfter(cron, timezone, start), until, limit);
    // Walking back, cron-parser answers both passes of a repeated time at a
    // fall-back, where stepping forward finds the first only: start is then
    // one fire too late, and fewer than limit fires follow it. Stepping from
    // `from` is slower, never wrong.
    if (fromStart.due.length >= limit) return fromStart;
  }
  return stepDueFireTimes(cron, timezone, from, until, limit);
}

function stepDueFireTimes(cron: string, timezone: string, from: Date, until: Date, limit: number): DueFireTimes {
  let t = from;
  const due: Date[] = [];
  while (t <= until) {
    due.push(t);
    if (due.length > limit) due.shift();
    t = nextFireAfter(cron, timezone, t);
  }
  return { due, next: t };
}

/** Which of the due fire times to enqueue, by misfire policy. */
export function firesToEnqueue(
  policy: MisfirePolicy,
  due: Date[],
  now: Date,
  graceMs = MISFIRE_GRACE_MS_DEFAULT,
): Date[] {
  const latest = due.at(-1);
  if (!latest) return [];
  if (policy === 'run_all') return due;
  if (policy === 'run_once') return [latest];
  return now.getTime() - latest.getTime() <= graceMs ? [latest] : [];
}

const scheduleSchema = z.strictObject({
  name: nameSchema,
  cron: z.string(),
  timezone: z.string().optional(),
  payload: z.unknown().optional(),
  misfire: z.enum(['skip', 'run_once', 'run_all']).optional(),
  runAllCap: z.number().int().min(1).max(10_000).optional(),
});

// Each fire hands these to sluice.enqueue_many as they are stored, so they are
// held to defineJob's rules, in the resolved form a job definition carries
// (every field present: ScheduledJobOptions).
const scheduledJobOptionsSchema = z.strictObject({
  queue: nameSchema,
  priority: prioritySchema,
  maxAttempts: jobOptionsSchema.shape.maxAttempts.unwrap(),
  timeoutMs: jobOptionsSchema.shape.timeoutMs.unwrap().nullable(),
  backoff: backoffSchema.required(),
});

/**
 * The payload limit each fire is held to: the scheduler and runNow leave the
 * size check to sluice.enqueue_many, which applies 1 MiB whatever a client's
 * maxPayloadBytes (see payloadSizeChecked in sql/jobs.ts).
 */
export const SCHEDULE_PAYLOAD_BYTES_MAX = MAX_PAYLOAD_BYTES_DEFAULT;

interface ScheduleBase<J> {
  /** Unique name of the schedule. */
  name: string;
  /** 5 fields (minute first), 6 fields (second first) or a preset such as @hourly. */
  cron: string;
  /** IANA time zone the expression is read in. Default UTC. */
  timezone?: string;
  /** The job each fire enqueues. */
  job: J;
  /** What to do with fire times missed while nothing ran. Default run_once. */
  misfire?: MisfirePolicy;
  /** Most missed fires run_all enqueues. Default 100. */
  runAllCap?: number;
}

/**
 * A schedule's options. The payload is typed by the job's schema; it may be
 * left out (sent as `{}`) only when the schema accepts `{}`.
 */
export type ScheduleOptions<J extends AnyJob | string = AnyJob | string> = ScheduleBase<J> &
  (J extends string ? { payload?: unknown } : {} extends JobPayload<J> ? { payload?: JobPayload<J> } : { payload: JobPayload<J> });

export interface ScheduleDefinition {
  name: string;
  cron: string;
  timezone: string;
  jobName: string;
  payload: unknown;
  misfire: MisfirePolicy;
  runAllCap: number;
  /** The job definition's queue and retry options; null when the job is named, and sluice.job_types decides. */
  jobOptions: ScheduledJobOptions | null;
}

/**
 * Validates a schedule; a bad expression, zone or payload is a ValidationError
 * naming the field, a payload its fires could not enqueue a PayloadTooLargeError.
 */
export function schedule<J extends AnyJob | string>(options: ScheduleOptions<J>): ScheduleDefinition {
  if (typeof options !== 'object' || options === null) throw new ValidationError('schedule', 'expected an options object');
  const { job, ...rest } = options;
  const o = parseOptions(scheduleSchema, rest, 'schedule');
  // Checked before the parsers, whose messages would quote the text.
  for (const field of ['cron', 'timezone'] as const) {
    const text = o[field];
    if (typeof text === 'string' && unstorable(text)) throw new ValidationError(`schedule.${field}`, STORABLE_TEXT_RULE);
  }
  const timezone = checkTimezone('schedule.timezone', o.timezone ?? TIMEZONE_DEFAULT);
  const cron = checkCron('schedule.cron', o.cron, timezone);
  let jobName: string;
  let jobOptions: ScheduledJobOptions | null = null;
  let payload: unknown = o.payload ?? {};
  if (typeof job === 'string') {
    jobName = parseOptions(nameSchema, job, 'schedule.job');
  } else if (job && typeof job === 'object' && typeof job.name === 'string' && job.schema) {
    jobName = job.name;
    jobOptions = { queue: job.queue, priority: job.priority, maxAttempts: job.maxAttempts, timeoutMs: job.timeoutMs ?? null, backoff: job.backoff };
    const parsed = safeParse(job.schema, payload);
    if (!parsed.success) {
      const issue = parsed.issues[0]!;
      throw new ValidationError(['schedule.payload', issue.path].filter(Boolean).join('.'), issue.message);
    }
    payload = parsed.data;
  } else {
    throw new ValidationError('schedule.job', 'expected a job definition or a job name');
  }
  const fault = jsonText(payload);
  if (typeof fault !== 'string') throw new ValidationError(['schedule.payload', fault.path].filter(Boolean).join('.'), fault.reason);
  const size = Buffer.byteLength(fault);
  if (size > SCHEDULE_PAYLOAD_BYTES_MAX) throw new PayloadTooLargeError(jobName, size, SCHEDULE_PAYLOAD_BYTES_MAX);
  return {
    name: o.name,
    cron,
    timezone,
    jobName,
    payload,
    misfire: o.misfire ?? MISFIRE_DEFAULT,
    runAllCap: o.runAllCap ?? RUN_ALL_CAP_DEFAULT,
    jobOptions,
  };
}

/**
 * Validates a schedule given by job name, as schedule() returns one or as
 * written by hand: its fields as schedule() checks them, its job options as
 * defineJob checks a job's (a named priority becomes its number).
 */
export function scheduleByName(options: ScheduleDefinition): ScheduleDefinition {
  if (typeof options !== 'object' || options === null) throw new ValidationError('schedule', 'expected an options object');
  const { jobName, jobOptions, ...rest } = options;
  // With both, one of them would be silently ignored.
  if ('job' in rest) throw new OptionsConflictError(['schedule.job', 'schedule.jobName'], 'give job or jobName, not both');
  checkName('schedule.jobName', jobName);
  const def = schedule({ ...rest, job: jobName });
  if (jobOptions === undefined || jobOptions === null) return { ...def, jobOptions: null };
  const o = parseOptions(scheduledJobOptionsSchema, jobOptions, 'schedule.jobOptions');
  return { ...def, jobOptions: { ...o, priority: priorityValue(o.priority) } };
}

/** How long a schedule whose fire failed `failures` times in a row waits before it is tried again. */
export function cronRetryDelayMs(failures: number): number {
  return Math.min(CRON_RETRY_BASE_MS_DEFAULT * 2 ** Math.max(0, failures - 1), CRON_RETRY_MAX_MS_DEFAULT);
}

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

function parseTimeOfDay(field: string, at: string): [number, number] {
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(at);
  if (!m) throw new ValidationError(field, 'must be a time of day as HH:MM (00:00 to 23:59)');
  return [Number(m[1]), Number(m[2])];
}

/** Cron for every day at a local time, e.g. daily('09:30') → "30 9 * * *". */
export function daily(at: string): string {
  const [h, m] = parseTimeOfDay('daily.at', at);
  return `${m} ${h} * * *`;
}

/** Cron for one weekday at a local time, e.g. weekly('monday', '08:00') → "0 8 * * 1". */
export function weekly(on: Weekday, at: string): string {
  const day = WEEKDAYS.indexOf(String(on).toLowerCase() as Weekday);
  if (day < 0) throw new ValidationError('weekly.on', `must be one of ${WEEKDAYS.join(', ')}`);
  const [h, m] = parseTimeOfDay('weekly.at', at);
  return `${m} ${h} * * ${day}`;
}
