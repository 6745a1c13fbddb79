// A database restart in the middle of a stream of jobs: one worker process
// at concurrency C (each system's documented way to it, as in the many
// scenario) runs jobs offered at a fixed rate for `seconds`; a third of the
// way in, the server is stopped (immediate: as a crash, or fast) and started
// again. The producer sends a call that failed again until it succeeds, as an
// application would, and its jobs keep their first enqueue time, so their
// latency includes the outage. Reported: the outage, the time from the
// server being ready to the first job started after it, start latency of the
// jobs offered in the 10 s before the stop and the 10 s after the server was
// ready, every job's runs (once, twice or more, never), and whether the
// worker process lived through it without a restart.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { percentile } from '../stats.js';
import { REMAINING_SQL } from '../systems/queries.js';
import type { SystemKey } from '../systems/types.js';
import { dropProductionDatabase, freshProductionDatabase } from './database.js';
import { producerOptionsFor, workerOptionsFor } from './many.js';
import type { RestartMode, ServerControl } from './server-control.js';
import { dumpRecord, startProducer, startWorkers, stopWorkers } from './spawn-workers.js';

const WINDOW_MS = 10_000;
const POLL_MS = 200;
/** After the offer ends, how long the worker may take to finish what is left. */
const DRAIN_CAP_MS = 60_000;

export interface RestartShape {
  rate: number;
  seconds: number;
  concurrency: number;
  mode: RestartMode;
}

export interface LatencyWindow {
  started: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface RestartResult extends RestartShape {
  system: SystemKey;
  offered: number;
  failedCalls: number;
  outageMs: number;
  /** From the server accepting connections again to the first job any handler started after that; null: none started. */
  firstStartAfterMs: number | null;
  before: LatencyWindow;
  after: LatencyWindow;
  maxLatencyMs: number;
  ranOnce: number;
  /** Jobs that ran twice or more, leaving out those of calls the producer sent again (which may have been enqueued twice). */
  ranTwiceOrMore: number;
  /** Jobs of calls the producer sent again, and how many of them ran twice or more. */
  retriedJobs: number;
  retriedRanTwice: number;
  neverRan: number;
  left: number;
  /** The worker process was still running when the harness stopped it. */
  workerSurvived: boolean;
}

function latencyWindow(enqueuedAt: number[], latencyMs: number[], from: number, to: number): LatencyWindow {
  const lat = latencyMs.filter((_, i) => enqueuedAt[i]! >= from && enqueuedAt[i]! < to).sort((a, b) => a - b);
  return { started: lat.length, p50Ms: lat.length ? percentile(lat, 50) : null, p99Ms: lat.length ? percentile(lat, 99) : null };
}

async function remaining(url: string, system: SystemKey): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ n: number }>(REMAINING_SQL[system])).rows[0]!.n;
  } finally {
    await c.end();
  }
}

export async function restartRecovery(system: SystemKey, shape: RestartShape, server: ServerControl): Promise<RestartResult> {
  const url = await freshProductionDatabase(system);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  const recordFile = join(dir, 'record.json');
  const [worker] = await startWorkers(system, url, 1, { ...workerOptionsFor(system, shape.concurrency), recordFile });
  try {
    const producer = startProducer(system, url, shape.rate, shape.seconds, { retry: true, ...producerOptionsFor(system) });
    await new Promise((r) => setTimeout(r, (shape.seconds * 1000) / 3));
    const { stoppingAt, readyAt } = await server.restart(shape.mode);
    const produced = await producer.produced;
    await producer.exited;
    const deadline = Date.now() + DRAIN_CAP_MS;
    let left = await remaining(url, system);
    while (left > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      left = await remaining(url, system);
    }
    const workerSurvived = worker!.child.exitCode === null && worker!.child.signalCode === null;
    let record = { enqueuedAt: [] as number[], latencyMs: [] as number[], ran: [] as number[] };
    if (workerSurvived) {
      await dumpRecord(worker!);
      record = JSON.parse(await readFile(recordFile, 'utf8')) as typeof record;
    }
    const { enqueuedAt, latencyMs, ran } = record;
    const runs = new Map<number, number>();
    for (const i of ran) runs.set(i, (runs.get(i) ?? 0) + 1);
    const startsAfter = enqueuedAt.map((t, k) => t + latencyMs[k]!).filter((s) => s >= readyAt);
    return {
      ...shape,
      system,
      offered: produced.offered,
      failedCalls: produced.failedCalls,
      outageMs: readyAt - stoppingAt,
      firstStartAfterMs: startsAfter.length ? Math.min(...startsAfter) - readyAt : null,
      before: latencyWindow(enqueuedAt, latencyMs, stoppingAt - WINDOW_MS, stoppingAt),
      after: latencyWindow(enqueuedAt, latencyMs, readyAt, readyAt + WINDOW_MS),
      maxLatencyMs: latencyMs.reduce((a, b) => Math.max(a, b), 0),
      ranOnce: [...runs.values()].filter((n) => n === 1).length,
      ranTwiceOrMore: [...runs].filter(([i, n]) => n > 1 && !produced.retriedJobs.has(i)).length,
      retriedJobs: produced.retriedJobs.size,
      retriedRanTwice: [...runs].filter(([i, n]) => n > 1 && produced.retriedJobs.has(i)).length,
      neverRan: produced.offered - runs.size,
      left,
      workerSurvived,
    };
  } finally {
    await stopWorkers([worker!]);
    await dropProductionDatabase(system);
    await rm(dir, { recursive: true, force: true });
  }
}
