// A fresh database per measurement of the production scenarios, and the
// server-wide counters they read from an admin connection (so the reading
// itself never counts against the database measured).
import pg from 'pg';
import { urlFor, withAdmin } from '../db.js';
import type { SystemKey } from '../systems/types.js';
import { installIn } from './spawn-workers.js';

const PREFIX = (process.env.BENCH_DB_PREFIX ?? 'sluice_bench_').replace(/[^a-z0-9_]/g, '_');

export function productionDbName(system: SystemKey): string {
  return `${PREFIX}prod_${system}`;
}

export async function freshProductionDatabase(system: SystemKey): Promise<string> {
  const name = productionDbName(system);
  await withAdmin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  const url = urlFor(name);
  await installIn(system, url);
  return url;
}

export async function dropProductionDatabase(system: SystemKey): Promise<void> {
  await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${productionDbName(system)} WITH (FORCE)`));
}

/** Committed plus rolled-back transactions of one database, as the statistics system has them now. */
export async function transactions(admin: pg.Client, database: string): Promise<number> {
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await admin.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
    [database],
  );
  return Number(rows[0]!.n);
}

/** Client connections open to one database: in all, and by application_name. */
export async function connections(admin: pg.Client, database: string): Promise<{ total: number; byApplication: Map<string, number> }> {
  const { rows } = await admin.query<{ app: string; n: number }>(
    `SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity
     WHERE datname = $1 AND backend_type = 'client backend' GROUP BY application_name`,
    [database],
  );
  return { total: rows.reduce((a, r) => a + r.n, 0), byApplication: new Map(rows.map((r) => [r.app, r.n])) };
}
