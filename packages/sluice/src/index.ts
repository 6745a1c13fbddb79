export { Sluice, createSluice, BATCH_CHUNK_SIZE, WAIT_FOR_TIMEOUT_MS_DEFAULT } from './client.js';
export type { SluiceOptions, EnqueueOptions, EnqueueManyOptions, JobRecord, JobState, BatchItem, BatchOptions } from './client.js';
export type { FlowStep } from './flow.js';
export { Queues } from './queue-admin.js';
export { defineJob } from './job.js';
export type { DefineJobOptions, JobDefinition, JobContext, JobHandler, JobInfo, JobRegistration, Middleware, MiddlewareContext } from './job.js';
export { Worker, createWorker } from './worker/worker.js';
export type { WorkerOptions, JobEvent, Subscription } from './worker/worker.js';
export { stopOnSignals } from './worker/signals.js';
export { schedule, daily, weekly, MISFIRE_DEFAULT, MISFIRE_GRACE_MS_DEFAULT, RUN_ALL_CAP_DEFAULT, TIMEZONE_DEFAULT } from './schedule.js';
export type { ScheduleOptions, ScheduleDefinition, MisfirePolicy, Weekday } from './schedule.js';
export { Schedules, ScheduleNotFoundError } from './schedules.js';
export type { CronRow } from './sql/cron.js';
export type { StopOnSignalsOptions } from './worker/signals.js';
export { migrate, checkSchema, MIGRATIONS_FOLDER_DEFAULT } from './migrate.js';
export { SluiceClient, UnpreparedClient } from './connection.js';
export type { ConnectionOptions } from './connection.js';
export type { MigrateOptions } from './migrate.js';
export type { Executor, Queryable } from './executor.js';
export * from './errors.js';
export { sluiceLogger } from './logger.js';
export { safeError, safeMessage } from './log-safety.js';
export { unstorable } from './json-text.js';
export * from './config.js';
export * as schema from './schema.js';
export { jobs, jobHistory, deadJobs, queues, workers, cronSchedules, metricsMinutely, jobTypes, batches, subscriptions } from './schema.js';
export type { JobErrorEntry } from './schema.js';
export { DatabaseMetrics, observeWorker, startMetricsServer, MetricsServerError, EXACT_COUNT_BELOW_DEFAULT } from './prometheus/index.js';
export type { DatabaseMetricsOptions, MetricsServer, MetricsServerOptions, ObservedWorker } from './prometheus/index.js';
export * from './http/index.js';
export { AlertWatcher, ALERT_CHECK_INTERVAL_MS_DEFAULT } from './services/alert-watcher.js';
export type { AlertEvent, AlertWatcherOptions } from './services/alert-watcher.js';
export {
  Maintenance,
  runMaintenance,
  MAINTENANCE_INTERVAL_MS_DEFAULT,
  METRICS_RETENTION_MS_DEFAULT,
  PARTITIONS_AHEAD_DAYS_DEFAULT,
  PRUNE_BATCH_SIZE_DEFAULT,
} from './services/maintenance.js';
export type { MaintenanceOptions, MaintenanceReport } from './services/maintenance.js';
export { queueStatsAll, jobDepth, queueLatency, workerStatus, replicaLag } from './sql/metrics.js';
export type { QueueStats, JobDepthRow, QueueLatencyRow, WorkerStatusRow, ReplicaLag } from './sql/metrics.js';
export { alertListActive } from './sql/alerts.js';
export type { ActiveAlert, AlertKind } from './sql/alerts.js';
export { jobList } from './sql/job-list.js';
export type { JobListFilter, JobListRow } from './sql/job-list.js';
