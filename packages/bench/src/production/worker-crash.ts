// A worker process killed mid-job: two worker processes of one system at its
// defaults (concurrency C, each system's documented way to it, as in the
// many scenario) share a batch of jobs that each run `holdMs`; as soon as the
// first process has started some, it gets SIGKILL (an OOM kill, a node lost),
// and the second carries on. Reported: how many jobs the killed process had
// started, how soon after the kill the survivor started each of them again,
// how long until no job was left (or what was left at the cap), and jobs that
// never ran.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { percentile } from '../stats.js';
import { REMAINING_SQL } from '../systems/queries.js';
import type { SystemKey } from '../systems/types.js';
import { dropProductionDatabase, freshProductionDatabase } from './database.js';
import { producerOptionsFor, workerOptionsFor } from './many.js';
import { dumpRecord, startProducer, startWorkers, stopWorkers } from './spawn-workers.js';

const POLL_MS = 100;
/** The kill waits for the first process to have started this share of its slots, or this long. */
const KILL_WHEN_STARTED_SHARE = 0.5;
const KILL_WAIT_MAX_MS = 10_000;

export interface CrashShape {
  concurrency: number;
  /** Jobs enqueued: enough for both processes' slots and more. */
  jobs: number;
  holdMs: number;
  capSeconds: number;
}

export interface CrashResult extends CrashShape {
  system: SystemKey;
  /** Jobs the killed process had started (none can have finished: the kill comes sooner than holdMs). */
  orphaned: number;
  /** Of them, started again by the survivor before the cap. */
  rerun: number;
  /** From the kill to the survivor starting an orphaned job again: median and last; null when none was. */
  rerunP50Ms: number | null;
  rerunMaxMs: number | null;
  /** From the kill until no job was left; null: jobs were left at the cap. */
  allDoneMs: number | null;
  left: number;
  /** Jobs neither process started. */
  neverStarted: number;
}

async function remaining(c: pg.Client, system: SystemKey): Promise<number> {
  return (await c.query<{ n: number }>(REMAINING_SQL[system])).rows[0]!.n;
}

export async function workerCrash(system: SystemKey, shape: CrashShape): Promise<CrashResult> {
  const url = await freshProductionDatabase(system);
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  const recordFile = join(dir, 'record.json');
  const options = { ...workerOptionsFor(system, shape.concurrency), holdMs: shape.holdMs };
  const [doomed, survivor] = await startWorkers(system, url, 2, (i) => (i === 0 ? { ...options, announceStarts: true } : { ...options, recordFile }));
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  try {
    const producer = startProducer(system, url, shape.jobs, 1, producerOptionsFor(system));
    await producer.produced;
    await producer.exited;
    const started = () => doomed!.lines.filter((l) => l.startsWith('STARTED ')).map((l) => Number(l.slice(8)));
    const waitUntil = Date.now() + KILL_WAIT_MAX_MS;
    while (started().length < shape.concurrency * KILL_WHEN_STARTED_SHARE && Date.now() < waitUntil) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const killedAt = Date.now();
    doomed!.child.kill('SIGKILL');
    await new Promise((r) => doomed!.child.once('exit', r));
    const orphaned = new Set(started());
    if (orphaned.size === 0) throw new Error(`${system}: the first process started no job within ${KILL_WAIT_MAX_MS} ms`);

    const deadline = killedAt + shape.capSeconds * 1000;
    let left = await remaining(reader, system);
    while (left > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      left = await remaining(reader, system);
    }
    const allDoneMs = left === 0 ? Date.now() - killedAt : null;
    await dumpRecord(survivor!);
    const { ran, startedAt } = JSON.parse(await readFile(recordFile, 'utf8')) as { ran: number[]; startedAt: number[] };
    const rerunAfter: number[] = [];
    const seen = new Set<number>();
    ran.forEach((i, k) => {
      if (orphaned.has(i) && !seen.has(i) && startedAt[k]! >= killedAt) {
        seen.add(i);
        rerunAfter.push(startedAt[k]! - killedAt);
      }
    });
    rerunAfter.sort((a, b) => a - b);
    const everStarted = new Set([...orphaned, ...ran]);
    return {
      ...shape,
      system,
      orphaned: orphaned.size,
      rerun: rerunAfter.length,
      rerunP50Ms: rerunAfter.length ? percentile(rerunAfter, 50) : null,
      rerunMaxMs: rerunAfter.length ? rerunAfter.at(-1)! : null,
      allDoneMs,
      left,
      neverStarted: shape.jobs - everStarted.size,
    };
  } finally {
    await reader.end();
    await stopWorkers([doomed!, survivor!]);
    await dropProductionDatabase(system);
    await rm(dir, { recursive: true, force: true });
  }
}
