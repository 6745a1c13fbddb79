// Latency: a producer enqueues one job per call, each call its own
// transaction, at a steady rate while a worker runs; each job reports the
// time from its enqueue call to its handler starting. Producer and worker
// share one process and clock.
//
// Enough calls run at once for the offered rate to hold while each commit
// waits for its WAL flush (500/s at 20 ms a commit needs 10). A producer that
// still falls behind is reported as such (how late its calls started), not
// folded into the latency: the open-loop figure (from when each call was
// due) is kept beside it.
import { freshDatabase } from '../db.js';
import { percentile } from '../stats.js';
import type { Payload, Producer, SystemAdapter } from '../systems/types.js';
import type { Variant } from '../variants.js';
import { sleep } from './common.js';

export interface LatencySample {
  jobs: number;
  /** Enqueue rate actually reached. */
  ratePerSecond: number;
  /** From the enqueue call starting to the handler starting. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** How long each enqueue call took (its commit included): what the server and disk give a producer. */
  enqueueP50: number;
  enqueueP99: number;
  /** From the enqueue call returning (committed) to the handler starting; 0 when the handler was first. */
  afterCommitP50: number;
  afterCommitP99: number;
  /** How late the calls started against their schedule: the producer's backlog. */
  lagP50: number;
  lagP99: number;
  /** Open loop: from when each call was due to the handler starting (latency plus the producer's backlog). */
  fromDueP50: number;
  fromDueP99: number;
}

interface ProducerTimes {
  /** Duration of each enqueue call, ms. */
  calls: number[];
  /** How late each call started against its schedule, ms. */
  lags: number[];
  /** When each job's enqueue call started and returned, by job number. */
  sent: Map<number, number>;
  returned: Map<number, number>;
}

const newTimes = (): ProducerTimes => ({ calls: [], lags: [], sent: new Map(), returned: new Map() });

/** Calls in flight at once, one connection each: 500/s holds with commits of up to 60 ms. */
export const PRODUCER_CONNECTIONS = 32;

/**
 * Sends `rate` jobs a second for `seconds`, open loop: each job is stamped
 * with the moment it was due, so a producer falling behind shows up as
 * latency instead of silently lowering the rate. At most `inFlight` calls
 * run at once, so no library's pool gives up waiting for a connection.
 */
async function produce(
  producer: Producer,
  rate: number,
  seconds: number,
  from: number,
  inFlight: number,
  times: ProducerTimes,
): Promise<number> {
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
      const sent = performance.now();
      await producer.enqueueOne({ i: from + k, t: due });
      const back = performance.now();
      times.calls.push(back - sent);
      times.lags.push(sent - due);
      times.sent.set(from + k, sent);
      times.returned.set(from + k, back);
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
  const fromDue: number[] = [];
  const startedAt = new Map<number, number>();
  let seen = 0;
  const onJob = (p: Payload) => {
    const now = performance.now();
    if (p.i >= 0) {
      fromDue.push(now - p.t!);
      startedAt.set(p.i, now);
      seen++;
    }
  };
  const worker = await sys.startWorker(url, variant.options, onJob);
  // Several connections, so commits overlap (group commit) as they would from many request handlers.
  const producer = await sys.producer(url, { ...variant.options, poolSize: PRODUCER_CONNECTIONS });
  try {
    await produce(producer, rate, warmupSeconds, -Math.round(rate * warmupSeconds) - 1, PRODUCER_CONNECTIONS, newTimes());
    const times = newTimes();
    const elapsed = await produce(producer, rate, seconds, 0, PRODUCER_CONNECTIONS, times);
    const total = Math.round(rate * seconds);
    const deadline = performance.now() + 30_000;
    while (seen < total && performance.now() < deadline) await sleep(5);
    if (seen < total) throw new Error(`only ${seen} of ${total} jobs started within 30 s of the last enqueue`);
    const ascending = (xs: number[]) => xs.sort((a, b) => a - b);
    const sorted = ascending([...startedAt].map(([i, at]) => at - times.sent.get(i)!));
    const calls = ascending(times.calls);
    const lags = ascending(times.lags);
    const due = ascending(fromDue);
    const afterCommit = ascending([...startedAt].map(([i, at]) => Math.max(0, at - times.returned.get(i)!)));
    return {
      jobs: total,
      ratePerSecond: total / elapsed,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1]!,
      enqueueP50: percentile(calls, 50),
      enqueueP99: percentile(calls, 99),
      afterCommitP50: percentile(afterCommit, 50),
      afterCommitP99: percentile(afterCommit, 99),
      lagP50: percentile(lags, 50),
      lagP99: percentile(lags, 99),
      fromDueP50: percentile(due, 50),
      fromDueP99: percentile(due, 99),
    };
  } finally {
    await producer.close();
    await worker.stop();
  }
}
