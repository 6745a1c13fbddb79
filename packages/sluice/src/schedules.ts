// Managing cron schedules from TypeScript (the CLI uses the same calls).
import { translateDbError } from './db-errors.js';
import { SluiceError, ValidationError } from './errors.js';
import type { Queryable } from './executor.js';
import { checkName } from './config.js';
import { nextFireAfter, schedule, type ScheduleDefinition, type ScheduleOptions } from './schedule.js';
import { cronJobArgs, cronUniqueKey } from './services/scheduler.js';
import { cronGet, cronList, cronRemove, cronSaveMany, cronSetEnabled, type CronRow } from './sql/cron.js';
import { jobEnqueueMany } from './sql/jobs.js';

export class ScheduleNotFoundError extends SluiceError {
  override name = 'ScheduleNotFoundError';
  constructor(readonly scheduleName: string) {
    super(`no schedule named "${scheduleName}"`);
  }
}

export class Schedules {
  constructor(private readonly db: Queryable) {}

  /** Adds a schedule, or updates the one with that name (keeping its next run when the expression is unchanged). */
  async add(options: ScheduleOptions | ScheduleDefinition): Promise<ScheduleDefinition> {
    let def: ScheduleDefinition;
    if ('jobName' in options) {
      const { jobName, jobOptions, ...rest } = options;
      def = { ...schedule({ ...rest, job: jobName }), jobOptions: jobOptions ?? null };
    } else {
      def = schedule(options);
    }
    // A schedule by job name must name a job in sluice.job_types (a trigger
    // refuses it otherwise): UnknownJobError.
    await cronSaveMany(this.db, [def], [nextFireAfter(def.cron, def.timezone, new Date())], 'sql').catch((err: unknown) => {
      throw translateDbError(err);
    });
    return def;
  }

  async list(): Promise<CronRow[]> {
    return cronList(this.db);
  }

  async get(name: string): Promise<CronRow> {
    const row = await cronGet(this.db, checkName('name', name));
    if (!row) throw new ScheduleNotFoundError(name);
    return row;
  }

  /** Enabling resumes from the next fire time after now; missed times while disabled are not caught up. */
  async enable(name: string): Promise<void> {
    const row = await this.get(name);
    await cronSetEnabled(this.db, name, true, nextFireAfter(row.cron, row.timezone, new Date()));
  }

  async disable(name: string): Promise<void> {
    if (!(await cronSetEnabled(this.db, checkName('name', name), false, null))) throw new ScheduleNotFoundError(name);
  }

  async remove(name: string): Promise<void> {
    if (!(await cronRemove(this.db, checkName('name', name)))) throw new ScheduleNotFoundError(name);
  }

  /** Enqueues the schedule's job now, outside its timetable; returns the job id. */
  async runNow(name: string): Promise<number> {
    const row = await this.get(name);
    const [id] = await jobEnqueueMany(this.db, cronJobArgs(row, null, `${cronUniqueKey(row.name, new Date())}:manual`));
    if (id === undefined) throw new ValidationError('name', 'schedule enqueued nothing');
    return id;
  }
}
