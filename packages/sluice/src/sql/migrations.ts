// Runtime SQL for sluice.__migrations, the applied-migration history. Its
// shape is drizzle-orm's migrations table, so either can have written it.
import type pg from 'pg';
import type { Queryable } from '../executor.js';

export const MIGRATIONS_TABLE = '__migrations';

/** created_at of the newest applied migration; null when none (or no table yet). */
export async function migrationLatestAppliedAt(client: pg.ClientBase): Promise<number | null> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('sluice.${MIGRATIONS_TABLE}')::text AS t`);
  if (!exists.rows[0]?.t) return null;
  const { rows } = await client.query<{ at: string | null }>(`SELECT max(created_at)::text AS at FROM sluice.${MIGRATIONS_TABLE}`);
  const at = rows[0]?.at;
  return at ? Number(at) : null;
}

export async function migrationTableEnsure(client: pg.ClientBase): Promise<void> {
  await client.query('CREATE SCHEMA IF NOT EXISTS sluice');
  await client.query(`CREATE TABLE IF NOT EXISTS sluice.${MIGRATIONS_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`);
}

export async function migrationRecord(client: pg.ClientBase, m: { hash: string; createdAt: number }): Promise<void> {
  await client.query(`INSERT INTO sluice.${MIGRATIONS_TABLE} (hash, created_at) VALUES ($1, $2)`, [m.hash, m.createdAt]);
}

/** created_at of every applied migration; null when the history table does not exist yet. */
export async function migrationsAppliedAt(client: pg.ClientBase): Promise<Set<number> | null> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('sluice.${MIGRATIONS_TABLE}')::text AS t`);
  if (!exists.rows[0]?.t) return null;
  const { rows } = await client.query<{ at: string }>(`SELECT created_at::text AS at FROM sluice.${MIGRATIONS_TABLE} WHERE created_at IS NOT NULL`);
  return new Set(rows.map((r) => Number(r.at)));
}

/** A function file as the check compares it with what migrate() recorded. */
export interface FunctionFileRef {
  name: string;
  object: string;
}

export interface MigrationsState {
  /** created_at of every applied numbered migration; null when the history table does not exist. */
  appliedAt: number[] | null;
  /**
   * The files of those given whose object the database lacks. How a file
   * was recorded does not count: an older process starting during a rolling
   * deploy finds the newer release's definitions (another hash), and files
   * that release renamed (no record of this name), and both must pass. Null
   * when the function files never ran (no sluice.__functions).
   */
  staleFunctions: string[] | null;
}

/** How far the database is migrated; reads only, so it may run inside the caller's transaction. */
export async function migrationsState(db: Queryable, functionFiles: readonly FunctionFileRef[]): Promise<MigrationsState> {
  const { rows } = await db.query<{ migrations: string | null; functions: string | null }>({
    text: `SELECT to_regclass('sluice.${MIGRATIONS_TABLE}')::text AS migrations, to_regclass('sluice.__functions')::text AS functions`,
  });
  if (rows[0]?.migrations == null) return { appliedAt: null, staleFunctions: null };
  if (rows[0].functions == null) {
    const applied = await db.query<{ at: string }>({ text: `SELECT created_at::text AS at FROM sluice.${MIGRATIONS_TABLE} WHERE created_at IS NOT NULL` });
    return { appliedAt: applied.rows.map((r) => Number(r.at)), staleFunctions: null };
  }
  const state = await db.query<{ applied: string[]; stale: string[] }>({
    text: `SELECT ARRAY(SELECT created_at::text FROM sluice.${MIGRATIONS_TABLE} WHERE created_at IS NOT NULL) AS applied,
             ARRAY(SELECT f.name FROM unnest($1::text[], $2::text[]) AS f(name, object)
                   WHERE f.object NOT IN (SELECT proname FROM pg_proc WHERE pronamespace = 'sluice'::regnamespace
                                          UNION SELECT relname FROM pg_class WHERE relnamespace = 'sluice'::regnamespace AND relkind = 'v')
                   ORDER BY f.name COLLATE "C") AS stale`,
    values: [functionFiles.map((f) => f.name), functionFiles.map((f) => f.object)],
  });
  const row = state.rows[0]!;
  return { appliedAt: row.applied.map(Number), staleFunctions: row.stale };
}
