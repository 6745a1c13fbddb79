// Managing cron schedules from TypeScript (the CLI uses the same calls).
import { translateDbError } from './db-errors.js';
import { PayloadTooLargeError, ScheduleNotFoundError, ValidationError } from './errors.js';
import type { Queryable } from './executor.js';
import { checkName } from './config.js';
import type { AnyJob } from './job.js';
import {
  SCHEDULE_PAYLOAD_BYTES_MAX,
  nextFireAfter,
  schedule,
  scheduleByName,
  type MisfirePolicy,
  type ScheduledJobOptions,
  type ScheduleDefinition,
  type ScheduleOptions,
} from './schedule.js';
import { cronJobArgs, cronUniqueKey } from './services/scheduler.js';
import { cronGet, cronList, cronRemove, cronSaveMany, cronSetEnabled, type CronRow } from './sql/cron.js';
import { jobEnqueueMany } from './sql/jobs.js';
import { databaseNow } from './sql/session.js';

/** A cron schedule as stored in sluice.cron_schedules. */
export interface CronSchedule {
  name: string;
  cron: string;
  timezone: string;
  jobName: string;
  payload: unknown;
  enabled: boolean;
  misfire: MisfirePolicy;
  runAllCap: number;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastError: string | null;
  /** Fires in a row whose job could not be enqueued; retried at retryAt. */
  failCount: number;
  retryAt: Date | null;
  /** The job's queue and retry options, for a schedule built from a job definition. */
  jobOptions: ScheduledJobOptions | null;
  declaredIn: 'code' | 'sql';
  /** The worker service that declares it in code; null for a worker without a service or a schedule added by SQL. */
  service: string | null;
}

function cronSchedule(r: CronRow): CronSchedule {
  return {
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    jobName: r.job_name,
    payload: r.payload,
    enabled: r.enabled,
    misfire: r.misfire,
    runAllCap: r.run_all_cap,
    nextRunAt: r.next_run_at,
    lastRunAt: r.last_run_at,
    lastError: r.last_error,
    failCount: r.fail_count,
    retryAt: r.retry_at,
    jobOptions: r.job_options,
    declaredIn: r.declared_in,
    service: r.service,
  };
}

export class Schedules {
  constructor(private readonly db: Queryable) {}

  /** Adds a schedule, or updates the one with that name (keeping its next run when the expression is unchanged). */
  async add<J extends AnyJob | string>(options: ScheduleOptions<J> | ScheduleDefinition): Promise<ScheduleDefinition> {
    const def =
      typeof options === 'object' && options !== null && 'jobName' in options
        ? scheduleByName(options)
        : schedule(options as ScheduleOptions<J>);
    await this.checkStoredPayloadSize(def);
    // A schedule by job name must name a job in sluice.job_types (a trigger
    // refuses it otherwise): UnknownJobError.
    const now = await databaseNow(this.db).catch((err: unknown) => {
      throw translateDbError(err);
    });
    await cronSaveMany(this.db, [def], [nextFireAfter(def.cron, def.timezone, now)], { in: 'sql' }).catch((err: unknown) => {
      throw translateDbError(err);
    });
    return def;
  }

  /**
   * schedule() measured the payload's JSON text, but each fire measures the
   * jsonb text read back from the row, which is longer: a space after every
   * ":" and ",", and numbers written out in full (1e+300 is 301 digits). A
   * payload within the limit by one measure and over it by the other would
   * never fire, so the database measures it as it will.
   */
  private async checkStoredPayloadSize(def: ScheduleDefinition): Promise<void> {
    const { rows } = await this.db
      .query<{ size: number }>({ text: 'SELECT octet_length($1::jsonb::text) AS size', values: [JSON.stringify(def.payload)] })
      .catch((err: unknown) => {
        throw translateDbError(err);
      });
    const size = rows[0]!.size;
    if (size > SCHEDULE_PAYLOAD_BYTES_MAX) throw new PayloadTooLargeError(def.jobName, size, SCHEDULE_PAYLOAD_BYTES_MAX);
  }

  async list(): Promise<CronSchedule[]> {
    return (await cronList(this.db)).map(cronSchedule);
  }

  async get(name: string): Promise<CronSchedule> {
    return cronSchedule(await this.row(name));
  }

  /** Enabling resumes from the next fire time after now; missed times while disabled are not caught up. */
  async enable(name: string): Promise<void> {
    const row = await this.row(name);
    const now = await databaseNow(this.db);
    let next: Date;
    try {
      next = nextFireAfter(row.cron, row.timezone, now);
    } catch (err) {
      // A row the scheduler disabled because it could not read it (written by SQL): enabling it as it is would fail again.
      throw new ValidationError('name', `schedule "${row.name}" has a cron expression or time zone that cannot be read; add() it again with valid ones`, { cause: err });
    }
    await cronSetEnabled(this.db, name, true, next);
  }

  async disable(name: string): Promise<void> {
    if (!(await cronSetEnabled(this.db, checkName('name', name), false, null))) throw new ScheduleNotFoundError(name);
  }

  async remove(name: string): Promise<void> {
    if (!(await cronRemove(this.db, checkName('name', name)))) throw new ScheduleNotFoundError(name);
  }

  /** Enqueues the schedule's job now, outside its timetable; returns the job id. */
  async runNow(name: string): Promise<number> {
    const row = await this.row(name);
    const [id] = await jobEnqueueMany(this.db, cronJobArgs(row, null, `${cronUniqueKey(row.name, new Date())}:manual`)).catch(
      (err: unknown) => {
        throw translateDbError(err);
      },
    );
    if (id === undefined) throw new ValidationError('name', 'schedule enqueued nothing');
    return id;
  }

  private async row(name: string): Promise<CronRow> {
    const row = await cronGet(this.db, checkName('name', name));
    if (!row) throw new ScheduleNotFoundError(name);
    return row;
  }
}
