// Applies drizzle/ under an advisory lock: the numbered migrations (table
// changes, drizzle-kit output) and then drizzle/functions (every SQL function
// and view in its current form). Refuses a database migrated by a newer sluice.
// drizzle-orm is not needed: sluice reads and applies the files itself.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { withClient } from './connection.js';
import { MigrationError, SchemaTooNewError } from './errors.js';
import { type MigrationFile, migrationFilesRead, migrationLatestKnownAt } from './migration-files.js';
import { migrationLatestAppliedAt, migrationRecord, migrationTableEnsure, migrationsAppliedAt } from './sql/migrations.js';
import { applyFunctionFiles, readFunctionFiles, type FunctionFile } from './migrate-functions.js';
import { requireMigrated } from './schema-version.js';

// The build copies the repository's drizzle/ to dist/drizzle, beside this
// module; the sources (src/) read it at the repository root. Found from this
// module either way, never from the caller's working directory.
const PACKAGED_MIGRATIONS = fileURLToPath(new URL('./drizzle', import.meta.url));

/** Where the migrations ship: dist/drizzle in the package, or drizzle/ at the repository root. */
export const MIGRATIONS_FOLDER_DEFAULT = existsSync(PACKAGED_MIGRATIONS)
  ? PACKAGED_MIGRATIONS
  : fileURLToPath(new URL('../../../drizzle', import.meta.url));
// An arbitrary constant shared by every sluice process: "sluice" in ASCII.
const MIGRATION_LOCK_KEY = 0x736c75696365;

export interface MigrateOptions {
  /** Default: the drizzle/ folder shipped with sluice. */
  migrationsFolder?: string;
}

export interface MigrateResult {
  /** Tags of the numbered migrations this call applied, oldest first (e.g. 0000_tables); empty when none was pending. */
  applied: string[];
  /** Files under drizzle/functions this call (re)applied, e.g. jobs/claim.sql; empty when every one was current. */
  functions: string[];
}

/** Brings the database schema up to this sluice's version. Safe to run from many processes at once. */
export async function migrate(pool: pg.Pool, options: MigrateOptions = {}): Promise<MigrateResult> {
  const folder = options.migrationsFolder ?? MIGRATIONS_FOLDER_DEFAULT;
  const files = migrationFilesRead(folder);
  const known = Math.max(...files.map((f) => f.createdAt));
  try {
    const functionFiles = readFunctionFiles(`${folder}/functions`);
    return await withClient(pool, (client) => migrateLocked(client, files, known, functionFiles));
  } catch (err) {
    if (err instanceof SchemaTooNewError) throw err;
    throw new MigrationError(`migration failed: ${(err as Error).message}`, { cause: err });
  }
}

async function migrateLocked(client: pg.PoolClient, files: MigrationFile[], known: number, functionFiles: FunctionFile[]): Promise<MigrateResult> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    const applied = await migrationsAppliedAt(client);
    const latest = applied === null || applied.size === 0 ? null : Math.max(...applied);
    if (latest !== null && latest > known) throw new SchemaTooNewError(latest, known);
    // Every migration not recorded, not only those after the newest recorded
    // (drizzle-orm's rule): one that sorts before an applied one would
    // otherwise never run, and requireMigrated() refuses such a database.
    const pending = files.filter((f) => !applied?.has(f.createdAt));
    if (pending.length) {
      await migrationTableEnsure(client);
      // All pending migrations commit together, as drizzle-orm's migrator does:
      // a failure leaves the schema where it was.
      await client.query('BEGIN');
      try {
        for (const file of pending) {
          for (const statement of file.statements) await client.query(statement);
          await migrationRecord(client, file);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    }
    const functions = await applyFunctionFiles(client, functionFiles);
    return { applied: pending.map((f) => f.tag), functions };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

/**
 * Throws SchemaNotMigratedError when the database lacks migrations this
 * sluice ships, SchemaTooNewError when a newer sluice migrated it.
 */
export async function checkSchema(pool: pg.Pool, options: MigrateOptions = {}): Promise<void> {
  const folder = options.migrationsFolder ?? MIGRATIONS_FOLDER_DEFAULT;
  await requireMigrated(pool, folder);
  const known = migrationLatestKnownAt(folder);
  const applied = await withClient(pool, migrationLatestAppliedAt);
  if (applied !== null && applied > known) throw new SchemaTooNewError(applied, known);
}
