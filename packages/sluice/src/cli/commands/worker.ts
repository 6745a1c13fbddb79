import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { CONCURRENCY_DEFAULT } from '../../config.js';
import type { JobRegistration } from '../../job.js';
import { Supervisor } from '../../supervisor.js';
import { stopOnSignals } from '../../worker/signals.js';
import { createWorker } from '../../worker/worker.js';
import { withSluice } from '../context.js';
import { EXIT_OK, UsageError, databaseUrl, parse, positiveInt } from '../usage.js';

export const workerHelp = `sluice worker <module> [--concurrency N] [--queues a,b] [--processes N] [--pool-mode session|transaction] [--database-url URL]

Runs a worker for the handlers a module exports (\`export const handlers = [job.handle(fn), ...]\`
or a default export of that array). SIGTERM/SIGINT stop it gracefully; a second signal forces exit.
--processes N runs N worker processes under a supervisor that restarts any that crash: use it for
CPU-bound handlers, since one Node process runs JavaScript on one core.
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
  const concurrency = positiveInt('--concurrency', values.concurrency as string | undefined, CONCURRENCY_DEFAULT);
  const processes = positiveInt('--processes', values.processes as string | undefined, 1);
  const queues = (values.queues as string | undefined)?.split(',').filter(Boolean);
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

  if (processes > 1) {
    // Checked once here: a child that cannot start would only be restarted.
    await withSluice(connectionString, async () => {});
    const childArgs = ['worker', modulePath, '--concurrency', String(concurrency), '--pool-mode', poolMode];
    if (queues?.length) childArgs.push('--queues', queues.join(','));
    const supervisor = new Supervisor({
      processes,
      script: CLI_SCRIPT,
      args: childArgs,
      env: { DATABASE_URL: connectionString },
      logger: pino({ name: 'sluice-supervisor' }),
    });
    supervisor.start();
    await new Promise<void>((done) => {
      let signalled = false;
      const onSignal = () => {
        if (signalled) {
          supervisor.kill();
          done();
          return;
        }
        signalled = true;
        void supervisor.stop().then(done);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    return EXIT_OK;
  }

  const worker = createWorker({
    connectionString,
    poolMode,
    ...(listenConnectionString ? { listenConnectionString } : {}),
    handlers,
    concurrency,
    ...(queues?.length ? { queues } : {}),
  });
  await worker.start();
  const stopped = new Promise<void>((resolveStopped) => worker.once('stopped', () => resolveStopped()));
  stopOnSignals(worker);
  await stopped;
  return EXIT_OK;
}
