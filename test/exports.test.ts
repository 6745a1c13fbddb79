// The public API is a deliberate list: each entry point's names are pinned
// here, so adding, moving or removing one is a visible change (and a line in
// CHANGELOG.md). Importing `sluice` must not load drizzle-orm or the HTTP or
// Prometheus libraries; that is checked in a fresh process.
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { spawnFixture } from './helpers/child.js';

const src = (file: string) => fileURLToPath(new URL(`../packages/sluice/src/${file}`, import.meta.url));

const ENTRY_POINTS = {
  sluice: 'index.ts',
  'sluice/schema': 'schema.ts',
  'sluice/admin': 'admin.ts',
  'sluice/http': 'http/index.ts',
  'sluice/prometheus': 'prometheus/index.ts',
} as const;

const VALUES: Record<keyof typeof ENTRY_POINTS, string[]> = {
  sluice: [
    'CancelledError', 'DatabaseUnavailableError', 'DependencyError', 'HttpApiServerError', 'IsolationLevelError', 'JobFailedError', 'JobNotFoundError', 'LeaseLostError',
    'MetricsServerError', 'MigrationError', 'OptionsConflictError', 'PayloadTooLargeError', 'PayloadValidationError', 'PermanentError', 'QueueFullError',
    'Queues', 'ReplayDependencyError', 'ResultValidationError', 'ScheduleNotFoundError', 'Schedules', 'SchemaNotMigratedError', 'SchemaTooNewError', 'Sluice', 'SluiceError',
    'TimeoutError', 'UniqueKeyConflictError', 'UnknownJobError', 'UnpreparedClient', 'UnsupportedSchemaError', 'ValidationError', 'WaitTimeoutError', 'Worker', 'WorkerStateError',
    'checkSchema', 'createSluice', 'createWorker', 'daily', 'defineJob', 'migrate', 'schedule', 'stopOnSignals', 'weekly',
  ],
  'sluice/schema': [
    'alertStates', 'batches', 'cronSchedules', 'dashboardSessions', 'deadJobs', 'jobHistory', 'jobTypes', 'jobs', 'metricsMinutely', 'queues',
    'sluiceSchema', 'subscriptions', 'workers',
  ],
  'sluice/admin': [
    'AlertWatcher', 'JOB_STATES', 'Maintenance', 'NAME_PATTERN', 'NAME_RULE', 'WORKER_DEAD_AFTER_MS_DEFAULT', 'alertListActive',
    'deadIdsWhere', 'deadPurge', 'jobDepth', 'jobList', 'queueLatency', 'queueStatsAll', 'replicaLag', 'runMaintenance',
    'safeError', 'safeMessage', 'sluiceLogger', 'unstorable', 'workerStatus',
  ],
  'sluice/http': [
    'HTTP_MAX_JSON_DEPTH', 'HTTP_TOKEN_MIN_LENGTH', 'SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT', 'SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT',
    'SignInThrottle', 'clientAddress', 'createHttpApi', 'retryAfterSeconds', 'startHttpApi',
  ],
  'sluice/prometheus': ['DatabaseMetrics', 'observeWorker', 'startMetricsServer'],
};

const TYPES: Record<keyof typeof ENTRY_POINTS, string[]> = {
  sluice: [
    'AnyJob', 'BackoffFunction', 'BackoffPolicy', 'BatchItem', 'BatchOptions', 'BlockedReplay', 'ConnectionOptions', 'CronSchedule', 'DefineJobOptions',
    'EnqueueManyOptions', 'EnqueueOptions', 'Executor', 'FlowStep', 'JobContext', 'JobDefinition', 'JobErrorEntry', 'JobEvent',
    'JobHandler', 'JobId', 'JobInfo', 'JobPayload', 'JobRecord', 'JobRegistration', 'JobResult', 'JobState', 'Middleware', 'MiddlewareContext', 'MigrateOptions',
    'MigrateResult', 'MisfirePolicy', 'PriorityName', 'QueueSettings', 'QueueStats', 'ScheduleDefinition', 'ScheduleOptions', 'SerializedError',
    'SluiceOptions', 'StopOnSignalsOptions', 'Subscription', 'Weekday', 'WorkerOptions',
  ],
  'sluice/schema': ['JobErrorEntry', 'ScheduledJobOptions'],
  'sluice/admin': [
    'ActiveAlert', 'AlertEvent', 'AlertKind', 'AlertWatcherOptions', 'DeadFilter', 'JobDepth', 'JobListFilter', 'JobListItem',
    'JobListPage', 'MaintenanceOptions', 'MaintenanceReport', 'Queryable', 'QueueLatency', 'ReplicaLag', 'WorkerStatus',
  ],
  'sluice/http': ['HttpApiOptions', 'HttpApiServer', 'HttpApiServerOptions', 'SignInThrottleOptions'],
  'sluice/prometheus': ['DatabaseMetricsOptions', 'MetricsServer', 'MetricsServerOptions', 'ObservedWorker'],
};

/** Names each entry file exports only as types, as the compiler sees them. */
function typeOnlyExports(): Record<string, string[]> {
  const files = Object.values(ENTRY_POINTS).map(src);
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out: Record<string, string[]> = {};
  for (const [entry, file] of Object.entries(ENTRY_POINTS)) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(src(file))!)!;
    out[entry] = checker
      .getExportsOfModule(module)
      .filter((e) => !((e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e).flags & ts.SymbolFlags.Value))
      .map((e) => e.name)
      .sort();
  }
  return out;
}

describe('public API', () => {
  it.each(Object.entries(ENTRY_POINTS))('%s exports exactly its pinned runtime names', async (entry, file) => {
    const mod = (await import(src(file))) as Record<string, unknown>;
    expect(Object.keys(mod).sort()).toEqual(VALUES[entry as keyof typeof ENTRY_POINTS]);
  });

  it('each entry point exports exactly its pinned types', () => {
    expect(typeOnlyExports()).toEqual(TYPES);
  });

  it('the root stays small: no zod schema, no internal constant', async () => {
    const mod = (await import(src('index.ts'))) as Record<string, unknown>;
    const zodSchema = (v: unknown) => typeof v === 'object' && v !== null && '_zod' in v;
    expect(Object.entries(mod).filter(([k, v]) => /^[A-Z][A-Z0-9_]+$/.test(k) || zodSchema(v))).toEqual([]);
  });
});

/** The npm packages a fresh process loads when it imports (and calls) what is given. */
async function packagesLoaded(...args: string[]): Promise<string[]> {
  const child = spawnFixture('test/fixtures/loaded-modules.ts', args);
  const [line] = await child.waitForLine(/^\[.*\]$/);
  await child.exited;
  return JSON.parse(line) as string[];
}

describe('what importing sluice loads', () => {
  it('the root loads neither hono, prom-client nor drizzle-orm', async () => {
    const loaded = await packagesLoaded(src('index.ts'));
    expect(loaded).toContain('pg');
    expect(loaded.filter((p) => /hono|prom-client|drizzle-orm/.test(p))).toEqual([]);
  });

  it('sluice/http loads hono, sluice/schema drizzle-orm, and a metrics call prom-client (so the check above can see them)', async () => {
    expect(await packagesLoaded(src('http/index.ts'))).toContain('hono');
    expect(await packagesLoaded(src('schema.ts'))).toContain('drizzle-orm');
    expect(await packagesLoaded(`${src('optional-deps.ts')}#promClient`)).toContain('prom-client');
  });
});
