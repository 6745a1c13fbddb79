// Idle cost: N worker processes at their defaults on an empty database;
// transactions per second (pg_stat_database xact_commit + xact_rollback) and
// connections held (pg_stat_activity, sampled every second) over a window
// that starts after the processes settled.
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
}

export async function idle(system: SystemKey, processes: number, seconds: number): Promise<IdleResult> {
  const url = await freshProductionDatabase(system);
  const database = productionDbName(system);
  const procs = await startWorkers(system, url, processes);
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const before = await transactions(admin, database);
    const t0 = performance.now();
    const samples: number[] = [];
    while (performance.now() - t0 < seconds * 1000) {
      samples.push(await connections(admin, database));
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
    };
  } finally {
    await admin.end();
    await stopWorkers(procs);
    await dropProductionDatabase(system);
  }
}
