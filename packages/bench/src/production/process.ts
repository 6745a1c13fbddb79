// One system's worker, producer or install in a process of its own, on the
// Node that system needs, for the production scenarios.
//
//   node --import tsx process.ts <system> <url> install
//   node --import tsx process.ts <system> <url> run [optionsJson]      prints READY; SIGUSR2 writes
//       what it recorded to options.recordFile and prints DUMPED; SIGTERM stops it
//   node --import tsx process.ts <system> <url> produce <rate> <seconds>  one job per call at a fixed
//       rate (open loop), each carrying its enqueue time; prints PRODUCED <n> at the end
import { writeFileSync } from 'node:fs';
import { loadSystem } from '../systems/load.js';
import type { SystemKey } from '../systems/types.js';

/** Enqueue calls in flight at once; a producer slower than its rate queues behind these. */
const PRODUCER_POOL_SIZE = 8;
const PRODUCER_TICK_MS = 5;

const [system, url, mode, ...rest] = process.argv.slice(2) as [SystemKey, string, string, ...string[]];
const sys = await loadSystem(system);

async function run(optionsJson: string | undefined): Promise<void> {
  const { recordFile, ...options } = optionsJson ? (JSON.parse(optionsJson) as Record<string, unknown>) : {};
  // Enqueue time (epoch ms, set by the producer) and start latency of each job, in start order.
  const enqueuedAt: number[] = [];
  const latencyMs: number[] = [];
  const worker = await sys.startWorker(url, options, (p) => {
    if (p.t === undefined) return;
    const now = Date.now();
    enqueuedAt.push(p.t);
    latencyMs.push(now - p.t);
  });
  process.stdout.write('READY\n');
  process.on('SIGUSR2', () => {
    if (typeof recordFile === 'string') writeFileSync(recordFile, JSON.stringify({ enqueuedAt, latencyMs }));
    process.stdout.write('DUMPED\n');
  });
  process.once('SIGTERM', () => {
    void worker.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

async function produce(rate: number, seconds: number): Promise<void> {
  const producer = await sys.producer(url, { poolSize: PRODUCER_POOL_SIZE });
  const started = performance.now();
  let sent = 0;
  const calls: Promise<void>[] = [];
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) calls.push(producer.enqueueOne({ i: sent, t: Date.now() }));
    await new Promise((r) => setTimeout(r, PRODUCER_TICK_MS));
  }
  await Promise.all(calls);
  await producer.close();
  process.stdout.write(`PRODUCED ${sent}\n`);
}

if (mode === 'install') await sys.install(url);
else if (mode === 'run') await run(rest[0]);
else if (mode === 'produce') await produce(Number(rest[0]), Number(rest[1]));
else throw new Error(`unknown mode ${mode}`);
