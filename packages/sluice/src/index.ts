// What an application imports: the client, job definitions, the worker,
// schedules, migrations and the errors. The drizzle tables for typed SQL on
// the job tables are in `sluice/schema` (a table's row type is drizzle's
// `typeof jobs.$inferSelect`), readers for dashboards and tools in
// `sluice/admin`, the HTTP API in `sluice/http`, Prometheus in
// `sluice/prometheus`, so importing this loads neither drizzle-orm, hono nor
// prom-client. test/exports.test.ts pins this list.
export { Sluice, createSluice } from './client.js';
export type { SluiceOptions, EnqueueOptions, EnqueueManyOptions, JobRecord, JobState, BatchItem, BatchOptions } from './client.js';
export type { FlowStep } from './flow.js';
export { Queues } from './queue-admin.js';
export { defineJob } from './job.js';
export type { AnyJob, DefineJobOptions, JobDefinition, JobContext, JobHandler, JobId, JobInfo, JobPayload, JobRegistration, JobResult, Middleware, MiddlewareContext } from './job.js';
export { Worker, createWorker } from './worker/worker.js';
export type { WorkerOptions, JobEvent, Subscription } from './worker/worker.js';
export { stopOnSignals } from './worker/signals.js';
export type { StopOnSignalsOptions } from './worker/signals.js';
export { schedule, daily, weekly } from './schedule.js';
export type { ScheduleOptions, ScheduleDefinition, MisfirePolicy, Weekday } from './schedule.js';
export { Schedules } from './schedules.js';
export type { CronSchedule } from './schedules.js';
export { migrate, checkSchema } from './migrate.js';
export type { MigrateOptions, MigrateResult } from './migrate.js';
export { UnpreparedClient } from './connection.js';
export type { ConnectionOptions } from './connection.js';
export type { Executor } from './executor.js';
export type { BackoffPolicy, BackoffFunction, PriorityName, QueueSettings } from './config.js';
export type { QueueStats } from './sql/metrics.js';
export {
  SluiceError,
  ValidationError,
  PayloadValidationError,
  PayloadTooLargeError,
  UnknownJobError,
  JobNotFoundError,
  PermanentError,
  TimeoutError,
  CancelledError,
  LeaseLostError,
  JobFailedError,
  WaitTimeoutError,
  QueueFullError,
  IsolationLevelError,
  DependencyError,
  ReplayDependencyError,
  UniqueKeyConflictError,
  SchemaTooNewError,
  MigrationError,
  SchemaNotMigratedError,
  UnsupportedSchemaError,
  ResultValidationError,
  WorkerStateError,
  DatabaseUnavailableError,
  OptionsConflictError,
  ScheduleNotFoundError,
  MetricsServerError,
  HttpApiServerError,
} from './errors.js';
export type { BlockedReplay, SerializedError } from './errors.js';
export type { JobErrorEntry } from './job-record.js';
