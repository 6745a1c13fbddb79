// Idle cost: N worker processes at their defaults on an empty database;
// transactions per second (pg_stat_database xact_commit + xact_rollback) and
// connections held (pg_stat_activity, sampled every second) over a window
// that starts after the processes settled. Each process connects with an
// application_name of its own, so that what one process holds is read off
// directly (the leader's and the others'), not inferred from differences of
// averages between runs with different numbers of processes.
import pg from 'pg';
import { adminUrl } from '../db.js';
import type { SystemKey } from '../systems/types.js';
import { connections, dropProductionDatabase, freshProductionDatabase, productionDbName, transactions } from './database.js';
import { startWorkers, stopWorkers } from './spawn-workers.js';

/**
 * Start-up work (declarations, first polls, back-offs growing to their
 * steady idle state) and the statistics' flush delay (up to 10 s) settle first.
 */
const SETTLE_MS = 45_000;

export interface IdleResult {
  system: SystemKey;
  processes: number;
  seconds: number;
  txPerS: number;
  txPerSPerProcess: number;
  connectionsAvg: number;
  connectionsMax: number;
  connectionsPerProcess: number;
  /** Each process's most connections at once over the window, most first (the leader's, where there is one). */
  processMax: number[];
}

export async function idle(system: SystemKey, processes: number, seconds: number): Promise<IdleResult> {
  const url = await freshProductionDatabase(system);
  const database = productionDbName(system);
  const procs = await startWorkers(system, (i) => withApplicationName(url, `idle-${i}`), processes);
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const before = await transactions(admin, database);
    const t0 = performance.now();
    const samples: number[] = [];
    const processMax = new Map<string, number>();
    while (performance.now() - t0 < seconds * 1000) {
      const { total, byApplication } = await connections(admin, database);
      samples.push(total);
      for (const [app, n] of byApplication) processMax.set(app, Math.max(n, processMax.get(app) ?? 0));
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const after = await transactions(admin, database);
    const elapsedS = (performance.now() - t0) / 1000;
    const txPerS = (after - before) / elapsedS;
    const connectionsAvg = samples.reduce((a, b) => a + b, 0) / samples.length;
    return {
      system,
      processes,
      seconds: elapsedS,
      txPerS,
      txPerSPerProcess: txPerS / processes,
      connectionsAvg,
      connectionsMax: Math.max(...samples),
      connectionsPerProcess: connectionsAvg / processes,
      processMax: Array.from({ length: processes }, (_, i) => processMax.get(`idle-${i}`) ?? 0).sort((a, b) => b - a),
    };
  } finally {
    await admin.end();
    await stopWorkers(procs);
    await dropProductionDatabase(system);
  }
}

function withApplicationName(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}
