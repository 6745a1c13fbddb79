// Runtime SQL for how far the database is migrated: drizzle's journal of
// numbered migrations and the function files' table, both in schema sluice.
import type { Queryable } from '../executor.js';

export interface MigrationsState {
  /** `when` of the latest applied numbered migration; null when none is. */
  appliedAt: number | null;
  /** Whether the SQL function files were ever applied (the step after the numbered migrations). */
  functionsApplied: boolean;
}

export async function migrationsState(db: Queryable): Promise<MigrationsState> {
  const { rows } = await db.query<{ migrations: string | null; functions: string | null }>({
    text: `SELECT to_regclass('sluice.__migrations')::text AS migrations, to_regclass('sluice.__functions')::text AS functions`,
  });
  const functionsApplied = rows[0]?.functions != null;
  if (rows[0]?.migrations == null) return { appliedAt: null, functionsApplied };
  const applied = await db.query<{ at: string | null }>({ text: `SELECT max(created_at)::text AS at FROM sluice.__migrations` });
  const at = applied.rows[0]?.at;
  return { appliedAt: at ? Number(at) : null, functionsApplied };
}
