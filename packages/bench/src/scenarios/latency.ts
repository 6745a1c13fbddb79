// Latency: a producer enqueues one job per call at a steady rate while a
// worker runs; each job reports the time from when its enqueue was due to
// its handler starting. Producer and worker share one process and clock.
import { freshDatabase } from '../db.js';
import { percentile } from '../stats.js';
import type { Payload, Producer, SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { sleep } from './common.js';

export interface LatencySample {
  jobs: number;
  /** Enqueue rate actually reached. */
  ratePerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const PRODUCER_CONNECTIONS = 8;

/**
 * Sends `rate` jobs a second for `seconds`, open loop: each job is stamped
 * with the moment it was due, so a producer falling behind shows up as
 * latency instead of silently lowering the rate. At most `inFlight` calls
 * run at once, so no library's pool gives up waiting for a connection.
 */
async function produce(producer: Producer, rate: number, seconds: number, from: number, inFlight: number): Promise<number> {
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let next = 0;
  const sender = async () => {
    for (;;) {
      const k = next++;
      if (k >= total) return;
      const due = start + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await producer.enqueueOne({ i: from + k, t: due });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, sender));
  return (performance.now() - start) / 1000;
}

export async function latency(
  sys: SystemAdapter,
  variant: Variant,
  rate: number,
  seconds: number,
  warmupSeconds: number,
): Promise<LatencySample> {
  const url = await freshDatabase(sys.key, (u) => sys.install(u));
  const latencies: number[] = [];
  let seen = 0;
  const onJob = (p: Payload) => {
    const ms = performance.now() - p.t!;
    if (p.i >= 0) {
      latencies.push(ms);
      seen++;
    }
  };
  const worker = await sys.startWorker(url, variant.options, onJob);
  // Several connections, so commits overlap (group commit) as they would from many request handlers.
  const producer = await sys.producer(url, { ...variant.options, poolSize: PRODUCER_CONNECTIONS });
  try {
    await produce(producer, rate, warmupSeconds, -Math.round(rate * warmupSeconds) - 1, PRODUCER_CONNECTIONS);
    const elapsed = await produce(producer, rate, seconds, 0, PRODUCER_CONNECTIONS);
    const total = Math.round(rate * seconds);
    const deadline = performance.now() + 30_000;
    while (seen < total && performance.now() < deadline) await sleep(5);
    if (seen < total) throw new Error(`only ${seen} of ${total} jobs started within 30 s of the last enqueue`);
    const sorted = latencies.sort((a, b) => a - b);
    return {
      jobs: total,
      ratePerSecond: total / elapsed,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1]!,
    };
  } finally {
    await producer.close();
    await worker.stop();
  }
}
