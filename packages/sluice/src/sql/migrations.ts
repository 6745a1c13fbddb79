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

export interface MigrationsState {
  /** created_at of the newest applied numbered migration; null when none is. */
  appliedAt: number | null;
  /** Whether the SQL function files were ever applied (the step after the numbered migrations). */
  functionsApplied: boolean;
}

/** How far the database is migrated; reads only, so it may run inside the caller's transaction. */
export async function migrationsState(db: Queryable): Promise<MigrationsState> {
  const { rows } = await db.query<{ migrations: string | null; functions: string | null }>({
    text: `SELECT to_regclass('sluice.${MIGRATIONS_TABLE}')::text AS migrations, to_regclass('sluice.__functions')::text AS functions`,
  });
  const functionsApplied = rows[0]?.functions != null;
  if (rows[0]?.migrations == null) return { appliedAt: null, functionsApplied };
  const applied = await db.query<{ at: string | null }>({ text: `SELECT max(created_at)::text AS at FROM sluice.${MIGRATIONS_TABLE}` });
  const at = applied.rows[0]?.at;
  return { appliedAt: at ? Number(at) : null, functionsApplied };
}
