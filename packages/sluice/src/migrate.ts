// Applies drizzle/ under an advisory lock: the numbered migrations (table
// changes, drizzle-kit output) and then drizzle/functions (every SQL function
// and view in its current form). Refuses a database migrated by a newer sluice.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { withClient } from './connection.js';
import { MigrationError, SchemaTooNewError } from './errors.js';
import { applyFunctionFiles, readFunctionFiles, type FunctionFile } from './migrate-functions.js';

// The published package carries drizzle/ beside dist/ (copied at pack time);
// in the repository it sits at the root, beside packages/.
const PACKAGED_MIGRATIONS = fileURLToPath(new URL('../drizzle', import.meta.url));

/** Where the migrations ship: drizzle/ in the package, or at the repository root. */
export const MIGRATIONS_FOLDER_DEFAULT = existsSync(PACKAGED_MIGRATIONS)
  ? PACKAGED_MIGRATIONS
  : fileURLToPath(new URL('../../../drizzle', import.meta.url));
const MIGRATIONS_TABLE = '__migrations';
// An arbitrary constant shared by every sluice process: "sluice" in ASCII.
const MIGRATION_LOCK_KEY = 0x736c75696365;

export interface MigrateOptions {
  /** Default: the drizzle/ folder shipped with sluice. */
  migrationsFolder?: string;
}

function latestKnownMigrationAt(folder: string): number {
  const journal = JSON.parse(readFileSync(`${folder}/meta/_journal.json`, 'utf8')) as {
    entries: { when: number }[];
  };
  return Math.max(...journal.entries.map((e) => e.when));
}

async function latestAppliedMigrationAt(client: pg.ClientBase): Promise<number | null> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('sluice.${MIGRATIONS_TABLE}')::text AS t`);
  if (!exists.rows[0]?.t) return null;
  const { rows } = await client.query<{ at: string | null }>(`SELECT max(created_at)::text AS at FROM sluice.${MIGRATIONS_TABLE}`);
  const at = rows[0]?.at;
  return at ? Number(at) : null;
}

/** Brings the database schema up to this sluice's version. Safe to run from many processes at once. */
export async function migrate(pool: pg.Pool, options: MigrateOptions = {}): Promise<void> {
  const folder = options.migrationsFolder ?? MIGRATIONS_FOLDER_DEFAULT;
  const known = latestKnownMigrationAt(folder);
  try {
    const functionFiles = readFunctionFiles(`${folder}/functions`);
    await withClient(pool, (client) => migrateLocked(client, folder, known, functionFiles));
  } catch (err) {
    if (err instanceof SchemaTooNewError) throw err;
    throw new MigrationError(`migration failed: ${(err as Error).message}`, { cause: err });
  }
}

async function migrateLocked(client: pg.PoolClient, folder: string, known: number, functionFiles: FunctionFile[]): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    const applied = await latestAppliedMigrationAt(client);
    if (applied !== null && applied > known) throw new SchemaTooNewError(applied, known);
    // Loaded here, not with the package: a worker process never migrates.
    const [{ drizzle }, { migrate: drizzleMigrate }] = await Promise.all([
      import('drizzle-orm/node-postgres'),
      import('drizzle-orm/node-postgres/migrator'),
    ]);
    await drizzleMigrate(drizzle(client), {
      migrationsFolder: folder,
      migrationsSchema: 'sluice',
      migrationsTable: MIGRATIONS_TABLE,
    });
    await applyFunctionFiles(client, functionFiles);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

/** Throws SchemaTooNewError or MigrationError when the database is not at this sluice's version. */
export async function checkSchema(pool: pg.Pool, options: MigrateOptions = {}): Promise<void> {
  const known = latestKnownMigrationAt(options.migrationsFolder ?? MIGRATIONS_FOLDER_DEFAULT);
  await withClient(pool, async (client) => {
    const applied = await latestAppliedMigrationAt(client);
    if (applied === null) throw new MigrationError('the database has no sluice schema: run `sluice migrate` first');
    if (applied > known) throw new SchemaTooNewError(applied, known);
    if (applied < known) throw new MigrationError('the database schema is older than this sluice: run `sluice migrate`');
  });
}
