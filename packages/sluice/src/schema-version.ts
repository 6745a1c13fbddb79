// How far the database's sluice schema is migrated, against the migrations
// this sluice ships. Every entry point (client, worker, CLI, dashboard, HTTP
// API) checks it before its first query, so an unmigrated or half-migrated
// database gives one error that says what to do, not "relation does not exist".
import { SchemaNotMigratedError } from './errors.js';
import type { Queryable } from './executor.js';
import { migrationJournalRead } from './migration-files.js';
import { migrationsState } from './sql/migrations.js';

/**
 * Throws SchemaNotMigratedError when the database lacks migrations this
 * sluice needs. A database migrated further (by a newer sluice, during a
 * rolling deploy) is accepted: that is `migrate()`'s business to refuse.
 */
export async function requireMigrated(db: Queryable, folder: string): Promise<void> {
  const journal = migrationJournalRead(folder).entries;
  const state = await migrationsState(db);
  const needs = journal.length;
  if (state.appliedAt === null) throw new SchemaNotMigratedError(null, needs);
  const version = journal.filter((e) => e.when <= state.appliedAt!).length;
  if (version < needs) throw new SchemaNotMigratedError(version, needs);
  if (!state.functionsApplied) throw new SchemaNotMigratedError(version, needs, 'its SQL functions are missing');
}
