// One system's worker, producer or install in a process of its own, on the
// Node that system needs, for the production scenarios.
//
//   node --import tsx process.ts <system> <url> install
//   node --import tsx process.ts <system> <url> run [optionsJson]      prints READY; SIGUSR2 writes
//       what it recorded (start latencies, the job numbers it ran and when each started, and with
//       options.countClaims its claims and empty claims) to options.recordFile and prints DUMPED;
//       SIGTERM stops it; options.holdMs: each job runs that long; options.announceStarts: prints
//       STARTED <job number> as each starts (for a process that will be killed)
//   node --import tsx process.ts <system> <url> produce <rate> <seconds> [optionsJson]  jobs at a fixed rate (open
//       loop): every PRODUCER_TICK_MS one bulk call with the jobs due by then, each carrying its
//       enqueue time; prints PRODUCED <n> <seconds taken> <call p50 ms> <call p99 ms> at the end
//       (a call's time is its own commit: the part of a job's latency spent before the queue saw it);
//       with options.retry a call that fails is sent again (its jobs keep their enqueue time) until it
//       succeeds, as an application would while its database restarts; PRODUCED then ends with the
//       number of failed calls and the job numbers of those calls as first-last ranges ("-" for none):
//       a call can fail after its commit, and its jobs are then enqueued twice
import { writeFileSync } from 'node:fs';
import { loadSystem } from '../systems/load.js';
import type { SystemKey } from '../systems/types.js';
import { countClaims, type ClaimCounts } from './claim-counter.js';

/** Connections of the producer, so a slow call does not hold up the next tick's. */
const PRODUCER_POOL_SIZE = 4;
/**
 * One call per tick: one-row calls (a synchronous commit each) could not keep
 * 1,000 a second on the shared 2-core machine, bulk calls every 10 ms can.
 */
const PRODUCER_TICK_MS = 10;
/** With options.retry: the pause before a failed call is sent again. */
const RETRY_AFTER_MS = 100;

const [system, url, mode, ...rest] = process.argv.slice(2) as [SystemKey, string, string, ...string[]];
const sys = await loadSystem(system);

async function run(optionsJson: string | undefined): Promise<void> {
  const { recordFile, countClaims: counting, holdMs, announceStarts, ...options } = optionsJson
    ? (JSON.parse(optionsJson) as Record<string, unknown>)
    : {};
  const claims: ClaimCounts | null = counting ? countClaims(system) : null;
  // Enqueue time (epoch ms, set by the producer) and start latency of each job, in start order.
  const enqueuedAt: number[] = [];
  const latencyMs: number[] = [];
  // The number of each job run, once per run, and when (epoch ms) it started.
  const ran: number[] = [];
  const startedAt: number[] = [];
  const hold = typeof holdMs === 'number' && holdMs > 0 ? holdMs : 0;
  const worker = await sys.startWorker(url, options, (p) => {
    const now = Date.now();
    ran.push(p.i);
    startedAt.push(now);
    if (announceStarts) process.stdout.write(`STARTED ${p.i}\n`);
    if (p.t !== undefined) {
      enqueuedAt.push(p.t);
      latencyMs.push(now - p.t);
    }
    if (hold) return new Promise((r) => setTimeout(r, hold));
  });
  process.stdout.write('READY\n');
  process.on('SIGUSR2', () => {
    if (typeof recordFile === 'string') writeFileSync(recordFile, JSON.stringify({ enqueuedAt, latencyMs, ran, startedAt, claims }));
    process.stdout.write('DUMPED\n');
  });
  process.once('SIGTERM', () => {
    void worker.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

/**
 * `total` (default rate × seconds) jobs at `rate`; options.hold keeps the
 * connections open after PRODUCED until SIGTERM, so the harness can read what
 * their backends spent; the rest goes to the system's producer.
 */
async function produce(rate: number, seconds: number, optionsJson: string | undefined): Promise<void> {
  const { hold, retry, ...options } = optionsJson ? (JSON.parse(optionsJson) as Record<string, unknown>) : {};
  const producer = await sys.producer(url, { poolSize: PRODUCER_POOL_SIZE, ...options });
  const total = Math.floor(rate * seconds);
  const started = performance.now();
  let sent = 0;
  const calls: Promise<void>[] = [];
  const callMs: number[] = [];
  let failedCalls = 0;
  const retried: string[] = [];
  const send = async (jobs: { i: number; t: number }[]): Promise<void> => {
    for (let failed = false; ; failed = true) {
      try {
        return await producer.enqueueMany(jobs);
      } catch (err) {
        if (!retry) throw err;
        failedCalls++;
        if (!failed) retried.push(`${jobs[0]!.i}-${jobs.at(-1)!.i}`);
        await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
      }
    }
  };
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    if (due > sent) {
      const t = Date.now();
      const begun = performance.now();
      calls.push(
        send(Array.from({ length: due - sent }, (_, k) => ({ i: sent + k, t }))).then(() => {
          callMs.push(performance.now() - begun);
        }),
      );
      sent = due;
    }
    await new Promise((r) => setTimeout(r, PRODUCER_TICK_MS));
  }
  await Promise.all(calls);
  const tookS = (performance.now() - started) / 1000;
  callMs.sort((a, b) => a - b);
  const at = (p: number) => (callMs.length ? callMs[Math.min(callMs.length - 1, Math.ceil((p / 100) * callMs.length) - 1)]!.toFixed(0) : 'NaN');
  process.stdout.write(`PRODUCED ${sent} ${tookS.toFixed(1)} ${at(50)} ${at(99)} ${failedCalls} ${retried.join(',') || '-'}\n`);
  if (hold) {
    // The idle pool does not keep the process alive; this timer does, until SIGTERM.
    const alive = setInterval(() => {}, 60_000);
    await new Promise((resolve) => process.once('SIGTERM', resolve));
    clearInterval(alive);
  }
  await producer.close();
}

if (mode === 'install') await sys.install(url);
else if (mode === 'run') await run(rest[0]);
else if (mode === 'produce') await produce(Number(rest[0]), Number(rest[1]), rest[2]);
else throw new Error(`unknown mode ${mode}`);
