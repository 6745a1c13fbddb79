// Each test file gets its own database cloned from the migrated template.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDb {
  url: string;
  name: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

function testDatabase(adminUrl: string, name: string): TestDb {
  const url = withDatabase(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on('error', () => {});
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      // A pool's end() resolves before its connections have closed: forced
      // off the database now, a connection still closing gets a FATAL that
      // its pool, ended and perhaps without an error listener, throws as an
      // uncaught exception. Give them a moment to go first.
      for (let i = 0; i < 40; i++) {
        const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
        if (rows[0]!.n === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function createTestDb(): Promise<TestDb> {
  const adminUrl = inject('adminUrl');
  const template = inject('templateDb');
  const name = `sluice_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // CREATE DATABASE ... TEMPLATE needs the template to be idle; parallel
  // files may clone at the same moment, so retry on "being accessed".
  for (let i = 0; ; i++) {
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
      break;
    } catch (err) {
      if (i > 50 || (err as { code?: string }).code !== '55006') throw err;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
  }
  await admin.end();
  return testDatabase(adminUrl, name);
}

/** An empty database, not cloned from the migrated template. */
export async function createEmptyDb(): Promise<TestDb> {
  const adminUrl = inject('adminUrl');
  const name = `sluice_e_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return testDatabase(adminUrl, name);
}

/** Polls a condition until it holds or the deadline passes; returns the last value. */
export async function waitUntil<T>(
  check: () => Promise<T> | T,
  { timeoutMs = 20_000, intervalMs = 25, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function count(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql, values);
  return Number(rows[0]!.n);
}

/**
 * A pg_stat_activity condition matching a worker's LISTEN session by its last
 * statement: the LISTEN itself, or the heartbeat (and leadership bid) the
 * worker sends on that session afterwards.
 */
export const ON_LISTEN_SESSION = `(query ILIKE 'LISTEN%' OR query ILIKE 'WITH beat AS (UPDATE sluice.workers%'
  OR query ILIKE 'WITH bid AS (SELECT pg_try_advisory_lock%')`;
