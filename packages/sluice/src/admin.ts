// `sluice/admin`: what dashboards and operations tools read and run beside
// an application: the inspection readers (each takes a pg Pool or client),
// the job listing, dead-letter purges, the alert watcher and maintenance.
// The constants here are the ones a caller must pass or match: the liveness
// threshold the readers take, the name rule and the listable states; the
// helpers let a tool check text as sluice does (unstorable) and log sluice's
// errors as sluice does (sluiceLogger, safeError, safeMessage: no payload or
// row contents).
export { queueStatsAll, jobDepth, queueLatency, workerStatus, replicaLag } from './sql/metrics.js';
export type { JobDepth, QueueLatency, WorkerStatus, ReplicaLag } from './sql/metrics.js';
export { alertListActive } from './sql/alerts.js';
export type { ActiveAlert, AlertKind } from './sql/alerts.js';
export { jobList, JOB_STATES } from './sql/job-list.js';
export type { JobListFilter, JobListItem, JobListPage } from './sql/job-list.js';
export { deadIdsWhere, deadPurge } from './sql/dead-jobs.js';
export type { DeadFilter } from './sql/dead-jobs.js';
export { AlertWatcher } from './services/alert-watcher.js';
export type { AlertEvent, AlertWatcherOptions } from './services/alert-watcher.js';
export { Maintenance, runMaintenance } from './services/maintenance.js';
export type { MaintenanceOptions, MaintenanceReport } from './services/maintenance.js';
export { NAME_PATTERN, NAME_RULE, WORKER_DEAD_AFTER_MS_DEFAULT } from './config.js';
export { unstorable } from './json-text.js';
export { sluiceLogger } from './logger.js';
export { safeError, safeMessage } from './log-safety.js';
export type { Queryable } from './executor.js';
