// The `sluice` command: dispatches to one module per command.
import { SchemaNotMigratedError, SluiceError } from '../errors.js';
import { cronCommand } from './commands/cron.js';
import { dashboardCommand } from './commands/dashboard.js';
import { dlqCommand } from './commands/dlq.js';
import { doctorCommand } from './commands/doctor.js';
import { jobsCommand } from './commands/jobs.js';
import { metricsCommand } from './commands/metrics.js';
import { migrateCommand } from './commands/migrate.js';
import { pruneCommand } from './commands/prune.js';
import { queuesCommand } from './commands/queues.js';
import { rolesCommand } from './commands/roles.js';
import { statsCommand } from './commands/stats.js';
import { workerCommand } from './commands/worker.js';
import { EXIT_FAILURE, EXIT_NOT_MIGRATED, EXIT_OK, EXIT_USAGE, UsageError } from './usage.js';

const commands: Record<string, (args: string[], out: (s: string) => void) => Promise<number>> = {
  migrate: migrateCommand,
  cron: cronCommand,
  worker: workerCommand,
  stats: statsCommand,
  jobs: jobsCommand,
  dlq: dlqCommand,
  queues: queuesCommand,
  metrics: metricsCommand,
  prune: pruneCommand,
  doctor: doctorCommand,
  roles: rolesCommand,
  dashboard: dashboardCommand,
};

export const mainHelp = `sluice <command> [options]

Commands:
  migrate   apply the schema migrations
  worker    run a worker for a module's handlers
  cron      add, list, enable, disable, remove, run-now cron schedules
  stats     queues at a glance: depth, oldest wait, throughput, errors, workers, alerts (--watch)
  jobs      list, show, retry, cancel jobs
  dlq       list, replay, purge the dead-letter queue
  queues    list, pause, resume, set (concurrency, limits, alert thresholds, retention)
  metrics   Prometheus text format, once or served (--port)
  prune     apply retention now: history partitions, old history, old metrics
  doctor    dead tuples, bloat, missing partitions, transactions holding back vacuum
  roles     print the SQL that creates the owner, runtime and read-only roles
  dashboard serve the web dashboard (needs @sluice/dashboard; --token-file, --user/--password-file or --insecure-local)

Every command takes --help; every command that prints data takes --json for scripts
(all but worker and dashboard, which run until stopped).
Exit codes: 0 ok, 1 the command failed, 2 bad arguments (nothing done),
3 (doctor only) some check warns, 4 the database is not migrated (run \`sluice migrate\`).
The database comes from --database-url or DATABASE_URL.`;

export async function main(argv: string[], out = (s: string) => console.log(s), err = (s: string) => console.error(s)): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(mainHelp);
    return name ? EXIT_OK : EXIT_USAGE;
  }
  const command = commands[name];
  if (!command) {
    err(`unknown command "${name}"\n\n${mainHelp}`);
    return EXIT_USAGE;
  }
  try {
    return await command(rest, out);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`sluice ${name}: ${e.message}`);
      return EXIT_USAGE;
    }
    err(`sluice ${name}: ${e instanceof SluiceError ? `${e.name}: ${e.message}` : (e as Error).message}`);
    return e instanceof SchemaNotMigratedError ? EXIT_NOT_MIGRATED : EXIT_FAILURE;
  }
}
