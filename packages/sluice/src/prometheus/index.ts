// `sluice/prometheus`: database gauges, per-process worker counters, and a
// server answering GET /metrics.
export { DatabaseMetrics } from './database-metrics.js';
export type { DatabaseMetricsOptions } from './database-metrics.js';
export { observeWorker } from './worker-metrics.js';
export type { ObservedWorker } from './worker-metrics.js';
export { startMetricsServer } from './server.js';
export type { MetricsServer, MetricsServerOptions } from './server.js';
