// How far the database's sluice schema is migrated, against the migrations
// this sluice ships. Every entry point (client, worker, CLI, dashboard, HTTP
// API) checks it before its first query, so an unmigrated or half-migrated
// database gives one error that says what to do, not "relation does not exist"
// or, worse, old SQL functions run by new code.
import { SchemaNotMigratedError } from './errors.js';
import type { Queryable } from './executor.js';
import { readFunctionFiles } from './migrate-functions.js';
import { migrationJournalRead } from './migration-files.js';
import { migrationsState } from './sql/migrations.js';

// Enough names to act on without a page of them when a database is far behind.
const NAMES_SHOWN = 3;

function listed(names: readonly string[]): string {
  const shown = names.slice(0, NAMES_SHOWN).join(', ');
  return names.length > NAMES_SHOWN ? `${shown} and ${names.length - NAMES_SHOWN} more` : shown;
}

/**
 * Throws SchemaNotMigratedError when the database lacks migrations this
 * sluice needs: a numbered migration not recorded (not only the newest: one
 * that sorts before an applied one is skipped by the max-based rule drizzle's
 * migrator uses), or a function file whose object is missing. A database
 * migrated further (by a newer sluice, during a rolling deploy) is accepted,
 * its function files too: that is `migrate()`'s business to refuse.
 */
export async function requireMigrated(db: Queryable, folder: string): Promise<void> {
  const journal = migrationJournalRead(folder).entries;
  const functionFiles = readFunctionFiles(`${folder}/functions`);
  const state = await migrationsState(db, functionFiles);
  const needs = journal.length;
  if (state.appliedAt === null || state.appliedAt.length === 0) throw new SchemaNotMigratedError(null, needs);
  const applied = new Set(state.appliedAt);
  const known = Math.max(...journal.map((e) => e.when));
  if (state.appliedAt.some((at) => at > known)) return;
  const missing = journal.filter((e) => !applied.has(e.when)).map((e) => e.tag);
  const version = needs - missing.length;
  if (missing.length > 0) throw new SchemaNotMigratedError(version, needs, `missing ${listed(missing)}`);
  if (state.staleFunctions === null) throw new SchemaNotMigratedError(version, needs, 'its SQL functions are missing');
  if (state.staleFunctions.length > 0) {
    throw new SchemaNotMigratedError(
      version,
      needs,
      `${state.staleFunctions.length} of the ${functionFiles.length} SQL function files this sluice ships are not applied (${listed(state.staleFunctions)})`,
    );
  }
}
