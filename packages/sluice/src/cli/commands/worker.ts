import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { CONCURRENCY_DEFAULT } from '../../config.js';
import { ValidationError } from '../../errors.js';
import type { JobRegistration } from '../../job.js';
import { Supervisor } from '../../supervisor.js';
import { resolveWorkerOptions } from '../../worker/options.js';
import { stopOnSignals } from '../../worker/signals.js';
import { createWorker, type Worker } from '../../worker/worker.js';
import { withSluice } from '../context.js';
import { EXIT_OK, EXIT_USAGE, UsageError, databaseUrl, parse } from '../usage.js';
import { int, name, str } from './args.js';

export const workerHelp = `sluice worker <module> [--concurrency N] [--queues a,b] [--processes N] [--pool-mode session|transaction] [--database-url URL]

Runs a worker for the handlers a module exports (\`export const handlers = [job.handle(fn), ...]\`
or a default export of that array). SIGTERM/SIGINT stop it gracefully; a second signal forces exit.
--processes N (at most 1000) runs N worker processes under a supervisor that restarts any that
crash: use it for CPU-bound handlers, since one Node process runs JavaScript on one core. A process
that refuses its arguments (exit code 2) is not restarted: the supervisor stops the others and exits 2.
--queues a,b: the queues to claim from (default: the queues of the module's handlers).
--pool-mode transaction: the database URL goes through a pooler in transaction mode (PgBouncer);
the worker then sends no named statements, and LISTENs on SLUICE_LISTEN_URL (a direct
connection, read from the environment) or, without it, polls.
Prefer DATABASE_URL to --database-url when the URL holds a password: any local user can read a
command line (ps). The children never get it on theirs: the supervisor hands it over in their
environment.`;

// The supervisor's children run the same CLI as this process: bin/sluice.js
// (tsx over src/) in the workspace, the compiled dist/cli/bin.js when published.
const CLI_SCRIPT = fileURLToPath(
  import.meta.url.endsWith('.ts') ? new URL('../../../bin/sluice.js', import.meta.url) : new URL('../bin.js', import.meta.url),
);
const TS_MODULE = /\.[cm]?tsx?$/;
/** Each process holds its own pool and listen connection. */
const PROCESSES_MAX = 1_000;

/** --queues a,b: every entry a queue name; an empty list would silently mean every queue of the handlers. */
function queueList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const queues = value.split(',');
  if (queues.some((q) => q === '')) throw new UsageError('--queues', 'give queue names separated by commas, none of them empty');
  return queues.map((q) => name('--queues', q)!);
}

/** createWorker's refusal of an option, as a usage error naming the flag (or the module, for its handlers). */
function usageError(err: ValidationError): UsageError {
  const option = err.field.split('.')[1];
  const argument = option === 'concurrency' || option === 'queues' ? `--${option}` : '<module>';
  const reason = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
  return new UsageError(argument, reason, { cause: err });
}

/**
 * The compiled CLI runs under plain node; a handler module written in
 * TypeScript gets tsx registered first (bin/sluice.js has done it already).
 * tsx is an optional peer dependency: only this path needs it.
 */
async function loadTypeScript(modulePath: string): Promise<void> {
  if (!TS_MODULE.test(modulePath) || import.meta.url.endsWith('.ts')) return;
  let tsx: { register(): unknown };
  try {
    tsx = await import('tsx/esm/api');
  } catch (err) {
    throw new UsageError(
      '<module>',
      `${modulePath} is TypeScript, and running it needs tsx, which is not installed: \`npm install tsx\`, or give the compiled .js module`,
      { cause: err },
    );
  }
  tsx.register();
}

export async function workerCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, {
    'database-url': { type: 'string' },
    concurrency: { type: 'string' },
    queues: { type: 'string' },
    processes: { type: 'string' },
    'pool-mode': { type: 'string' },
  });
  if (values.help) {
    out(workerHelp);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError('<module>', 'give exactly one module that exports handlers');
  const concurrency = int('--concurrency', str(values, 'concurrency')) ?? CONCURRENCY_DEFAULT;
  const processes = int('--processes', str(values, 'processes'), { max: PROCESSES_MAX }) ?? 1;
  const queues = queueList(str(values, 'queues'));
  const connectionString = databaseUrl(values['database-url'] as string | undefined);
  const poolMode = (values['pool-mode'] as string | undefined) ?? 'session';
  if (poolMode !== 'session' && poolMode !== 'transaction') throw new UsageError('--pool-mode', "must be 'session' or 'transaction'");
  const listenConnectionString = process.env.SLUICE_LISTEN_URL || undefined;
  const modulePath = resolve(positionals[0]!);
  let mod: { handlers?: JobRegistration[]; default?: JobRegistration[] };
  await loadTypeScript(modulePath);
  try {
    mod = await import(pathToFileURL(modulePath).href);
  } catch (err) {
    throw new UsageError('<module>', `cannot load ${positionals[0]}: ${(err as Error).message}`);
  }
  const handlers = mod.handlers ?? mod.default;
  if (!Array.isArray(handlers)) throw new UsageError('<module>', 'must export `handlers` (an array of job.handle(fn))');
  const options = { handlers, concurrency, ...(queues ? { queues } : {}) };
  // Checked here, before any process starts: createWorker refuses what its
  // schema refuses (a concurrency past 10,000, ...), and under a supervisor a
  // child refusing its arguments would only be restarted.
  try {
    resolveWorkerOptions(options);
  } catch (err) {
    throw err instanceof ValidationError ? usageError(err) : err;
  }

  if (processes > 1) {
    // Checked once here: a child that cannot start would only be restarted.
    await withSluice(connectionString, async () => {});
    const childArgs = ['worker', modulePath, '--concurrency', String(concurrency), '--pool-mode', poolMode];
    if (queues) childArgs.push('--queues', queues.join(','));
    const supervisor = new Supervisor({
      processes,
      script: CLI_SCRIPT,
      args: childArgs,
      env: { DATABASE_URL: connectionString },
      logger: pino({ name: 'sluice-supervisor' }),
    });
    supervisor.start();
    let signalled = false;
    let onSignal!: () => void;
    const stopped = new Promise<number>((done) => {
      onSignal = () => {
        if (signalled) {
          supervisor.kill();
          done(EXIT_OK);
          return;
        }
        signalled = true;
        void supervisor.stop().then(() => done(EXIT_OK));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    try {
      // A child that refused its arguments: the others are stopped, and so is this command.
      return await Promise.race([stopped, supervisor.gaveUp.then(() => EXIT_USAGE)]);
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
  }

  let worker: Worker;
  try {
    worker = createWorker({
      connectionString,
      poolMode,
      ...(listenConnectionString ? { listenConnectionString } : {}),
      ...options,
    });
  } catch (err) {
    throw err instanceof ValidationError ? usageError(err) : err;
  }
  await worker.start();
  const stopped = new Promise<void>((resolveStopped) => worker.once('stopped', () => resolveStopped()));
  stopOnSignals(worker);
  await stopped;
  return EXIT_OK;
}
