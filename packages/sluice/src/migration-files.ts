// Reads the drizzle-kit migration folder (meta/_journal.json and one .sql
// file per entry) the way drizzle-orm's migrator does, so a database
// migrated by either keeps one history: same hash, same created_at. sluice
// applies them itself so `sluice migrate` needs no drizzle-orm installed.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MigrationError } from './errors.js';

/** drizzle-kit's separator between the statements of one migration file. */
const STATEMENT_BREAKPOINT = '--> statement-breakpoint';

export interface MigrationFile {
  /** The file name without .sql, e.g. 0000_tables. */
  tag: string;
  /** The journal's `when`: recorded as created_at, and what orders the history. */
  createdAt: number;
  /** sha256 of the file's text, as drizzle-orm records it. */
  hash: string;
  statements: string[];
}

interface Journal {
  entries: { tag: string; when: number }[];
}

/** The journal's entries as drizzle-kit wrote them: each migration's tag and `when`. */
export function migrationJournalRead(folder: string): Journal {
  const path = `${folder}/meta/_journal.json`;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Journal;
  } catch (err) {
    throw new MigrationError(`cannot read the migration journal ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The newest migration this folder knows, as its created_at. */
export function migrationLatestKnownAt(folder: string): number {
  return Math.max(...migrationJournalRead(folder).entries.map((e) => e.when));
}

export function migrationFilesRead(folder: string): MigrationFile[] {
  return migrationJournalRead(folder).entries.map(({ tag, when }) => {
    const path = `${folder}/${tag}.sql`;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new MigrationError(`migration ${tag} is in the journal but ${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    return { tag, createdAt: when, hash: createHash('sha256').update(text).digest('hex'), statements: text.split(STATEMENT_BREAKPOINT) };
  });
}
