// The `sluice` command: dispatches to one module per command.
import { SluiceError } from '../errors.js';
import { cronCommand } from './commands/cron.js';
import { migrateCommand } from './commands/migrate.js';
import { workerCommand } from './commands/worker.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './usage.js';

const commands: Record<string, (args: string[], out: (s: string) => void) => Promise<number>> = {
  migrate: migrateCommand,
  cron: cronCommand,
  worker: workerCommand,
};

export const mainHelp = `sluice <command> [options]

Commands:
  migrate   apply the schema migrations
  worker    run a worker for a module's handlers
  cron      add, list, enable, disable, remove, run-now cron schedules

Every command takes --help. Exit codes: 0 ok, 1 the command failed, 2 bad arguments (nothing done).
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
    return EXIT_FAILURE;
  }
}
