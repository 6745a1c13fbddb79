import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JobRegistration } from '../../job.js';
import { stopOnSignals } from '../../worker/signals.js';
import { createWorker } from '../../worker/worker.js';
import { CONCURRENCY_DEFAULT } from '../../config.js';
import { EXIT_OK, UsageError, databaseUrl, parse, positiveInt } from '../usage.js';

export const workerHelp = `sluice worker <module> [--concurrency N] [--queues a,b] [--database-url URL]

Runs a worker for the handlers a module exports (\`export const handlers = [job.handle(fn), ...]\`
or a default export of that array). SIGTERM/SIGINT stop it gracefully; a second signal forces exit.`;

export async function workerCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, {
    'database-url': { type: 'string' },
    concurrency: { type: 'string' },
    queues: { type: 'string' },
  });
  if (values.help) {
    out(workerHelp);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError('<module>', 'give exactly one module that exports handlers');
  const concurrency = positiveInt('--concurrency', values.concurrency as string | undefined, CONCURRENCY_DEFAULT);
  const queues = (values.queues as string | undefined)?.split(',').filter(Boolean);
  const connectionString = databaseUrl(values['database-url'] as string | undefined);
  let mod: { handlers?: JobRegistration[]; default?: JobRegistration[] };
  try {
    mod = await import(pathToFileURL(resolve(positionals[0]!)).href);
  } catch (err) {
    throw new UsageError('<module>', `cannot load ${positionals[0]}: ${(err as Error).message}`);
  }
  const handlers = mod.handlers ?? mod.default;
  if (!Array.isArray(handlers)) throw new UsageError('<module>', 'must export `handlers` (an array of job.handle(fn))');
  const worker = createWorker({ connectionString, handlers, concurrency, ...(queues?.length ? { queues } : {}) });
  await worker.start();
  const stopped = new Promise<void>((resolveStopped) => worker.once('stopped', () => resolveStopped()));
  stopOnSignals(worker);
  await stopped;
  return EXIT_OK;
}
