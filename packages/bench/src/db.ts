// Databases for the runs: one template per system, migrated once, and a
// fresh clone of it for every repetition so each starts from the same state.
import pg from 'pg';

export const ADMIN_URL_DEFAULT = 'postgres://postgres@127.0.0.1:5432/postgres';
// BENCH_DB_PREFIX separates concurrent bench runs on one server: each run
// drops every database with its prefix when it starts and ends.
const PREFIX = (process.env.BENCH_DB_PREFIX ?? 'sluice_bench_').replace(/[^a-z0-9_]/g, '_');

export function adminUrl(): string {
  return process.env.BENCH_DATABASE_URL ?? ADMIN_URL_DEFAULT;
}

export function urlFor(database: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

/** Database names are built from fixed system keys only, never from input. */
function dbName(system: string, suffix: string): string {
  const name = `${PREFIX}${system}_${suffix}`.replace(/[^a-z0-9_]/g, '_');
  return name;
}

export async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function exists(c: pg.Client, name: string): Promise<boolean> {
  const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  return (rowCount ?? 0) > 0;
}

/**
 * A library's stop() may resolve while its pool is still closing sockets;
 * forcing the drop then would hit a live client, and a pool without an error
 * listener (graphile-worker's) takes the process down with it.
 */
async function waitForNoSessions(c: pg.Client, name: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
    if (rows[0]!.n === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Returns the URL of a fresh database cloned from the system's template,
 * installing the template first when it is missing.
 */
export async function freshDatabase(system: string, install: (url: string) => Promise<void>): Promise<string> {
  const template = dbName(system, 'tpl');
  const target = dbName(system, 'run');
  await withAdmin(async (c) => {
    if (!(await exists(c, template))) {
      await c.query(`CREATE DATABASE ${template}`);
      try {
        await install(urlFor(template));
      } catch (err) {
        await c.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
        throw err;
      }
    }
    await waitForNoSessions(c, target);
    await c.query(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`);
    // A system that keeps a connection open a moment after it says it closed
    // would make the clone fail with "being accessed by other users".
    for (let i = 0; ; i++) {
      try {
        await c.query(`CREATE DATABASE ${target} TEMPLATE ${template}`);
        break;
      } catch (err) {
        if (i > 50 || (err as { code?: string }).code !== '55006') throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  return urlFor(target);
}

/** Drops every database this harness made; run before and after a bench. */
export async function dropBenchDatabases(): Promise<void> {
  await withAdmin(async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`${PREFIX}%`],
    );
    for (const { datname } of rows) {
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
    }
  });
}

/**
 * Settles the database after seeding so every system starts its timed run
 * the same way: fresh statistics and no checkpoint debt from the inserts.
 */
export async function settle(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The system's own tables only: analyzing the catalogs too costs a second per run.
    const { rows } = await client.query<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
       WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    );
    for (const { t } of rows) await client.query(`ANALYZE ${t}`);
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
}

/** Runs one statement on a short-lived connection. */
export async function queryOnce<R extends pg.QueryResultRow>(url: string, text: string, values?: unknown[]): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}
