// Prometheus: database gauges, per-process worker counters, and a server.
export { DatabaseMetrics, EXACT_COUNT_BELOW_DEFAULT, METRICS_WORKER_DEAD_AFTER_MS_DEFAULT } from './database-metrics.js';
export type { DatabaseMetricsOptions } from './database-metrics.js';
export { observeWorker } from './worker-metrics.js';
export type { ObservedWorker } from './worker-metrics.js';
export { startMetricsServer, MetricsServerError } from './server.js';
export type { MetricsServer, MetricsServerOptions } from './server.js';
