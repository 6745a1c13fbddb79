// Vacuum held back: another session holds a REPEATABLE READ snapshot open
// from the start (an analytics query, a pg_dump, a forgotten idle-in-
// transaction session), so nothing deleted or updated since can be vacuumed
// or pruned. Jobs are offered one per call at a fixed rate for `seconds` to
// one worker process at its defaults; enqueue-to-start latency of the jobs
// offered in the first and the last 15 s, jobs left when the offer ends, and
// dead tuples in the system's tables then.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { percentile } from '../stats.js';
import { REMAINING_SQL, SCHEMA } from '../systems/queries.js';
import type { SystemKey } from '../systems/types.js';
import { dropProductionDatabase, freshProductionDatabase } from './database.js';
import { dumpRecord, produce, startWorkers, stopWorkers } from './spawn-workers.js';

const WINDOW_MS = 15_000;

export interface WindowLatency {
  started: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface VacuumResult {
  system: SystemKey;
  rate: number;
  seconds: number;
  offered: number;
  /** Seconds until the producer's last call returned. */
  offerTookS: number;
  /** One enqueue call's time (its commit), median and 99th percentile: latency spent before the queue saw the jobs. */
  callP50Ms: number;
  callP99Ms: number;
  first: WindowLatency;
  last: WindowLatency;
  left: number;
  deadTuples: number;
}

function window(enqueuedAt: number[], latencyMs: number[], from: number, to: number): WindowLatency {
  const lat = latencyMs.filter((_, i) => enqueuedAt[i]! >= from && enqueuedAt[i]! < to).sort((a, b) => a - b);
  return { started: lat.length, p50Ms: lat.length ? percentile(lat, 50) : null, p99Ms: lat.length ? percentile(lat, 99) : null };
}

export async function vacuumHeldBack(system: SystemKey, rate: number, seconds: number, workerOptions: Record<string, unknown> = {}): Promise<VacuumResult> {
  const url = await freshProductionDatabase(system);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  const recordFile = join(dir, 'record.json');
  const [worker] = await startWorkers(system, url, 1, { ...workerOptions, recordFile });
  const holder = new pg.Client({ connectionString: url });
  const reader = new pg.Client({ connectionString: url });
  await Promise.all([holder.connect(), reader.connect()]);
  try {
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    // The snapshot is taken by the first statement and held until the end.
    await holder.query('SELECT count(*) FROM pg_class');
    const startedAt = Date.now();
    const { offered, tookS, callP50Ms, callP99Ms } = await produce(system, url, rate, seconds);
    // The windows follow the planned offer; a job offered late by a slow producer still counts in its slot.
    const endedAt = startedAt + seconds * 1000;
    const left = (await reader.query<{ n: number }>(REMAINING_SQL[system])).rows[0]!.n;
    await reader.query('SELECT pg_stat_clear_snapshot()');
    const dead = await reader.query<{ n: string }>(
      'SELECT coalesce(sum(n_dead_tup), 0) AS n FROM pg_stat_user_tables WHERE schemaname = $1',
      [SCHEMA[system]],
    );
    await dumpRecord(worker!);
    const { enqueuedAt, latencyMs } = JSON.parse(await readFile(recordFile, 'utf8')) as { enqueuedAt: number[]; latencyMs: number[] };
    return {
      system,
      rate,
      seconds,
      offered,
      offerTookS: tookS,
      callP50Ms,
      callP99Ms,
      first: window(enqueuedAt, latencyMs, startedAt, startedAt + WINDOW_MS),
      last: window(enqueuedAt, latencyMs, endedAt - WINDOW_MS, endedAt),
      left,
      deadTuples: Number(dead.rows[0]!.n),
    };
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    await Promise.all([holder.end(), reader.end()]);
    await stopWorkers([worker!]);
    await dropProductionDatabase(system);
    await rm(dir, { recursive: true, force: true });
  }
}
