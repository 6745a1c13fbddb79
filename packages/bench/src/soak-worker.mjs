// The soak's worker process: what a user deploys, and nothing else. Plain
// JavaScript run by plain node against sluice's build (dist/), with the bench's
// no-op job. Once a second it writes one line to stdout for the bench:
// `<jobs handled> <heapUsed> <heapTotal> <external> <arrayBuffers>` (bytes).
// SIGTERM stops it gracefully (stopOnSignals), as in production.
import { pathToFileURL } from 'node:url';
import { z } from 'zod';

const [entry, url, optionsJson] = process.argv.slice(2);
const { createWorker, defineJob, stopOnSignals } = await import(pathToFileURL(entry).href);

const NOOP_JOB = defineJob({ name: 'bench.noop', schema: z.object({ i: z.number(), t: z.number().optional() }) });
let seen = 0;
const worker = createWorker({
  connectionString: url,
  handlers: [NOOP_JOB.handle(() => void seen++)],
  ...JSON.parse(optionsJson),
});
const report = () => {
  const m = process.memoryUsage();
  process.stdout.write(`${seen} ${m.heapUsed} ${m.heapTotal} ${m.external} ${m.arrayBuffers}\n`);
};
await worker.start();
report();
const timer = setInterval(report, 1_000);
worker.once('stopped', () => clearInterval(timer));
stopOnSignals(worker);
