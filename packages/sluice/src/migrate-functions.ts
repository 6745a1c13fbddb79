// Applies drizzle/functions: one file per SQL function or view, holding its
// current definition. A file runs when its content hash differs from the one
// recorded in sluice.__functions, or when the object it defines is missing (a
// numbered migration dropped it), all in one transaction.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type pg from 'pg';

export const FUNCTIONS_TABLE = '__functions';

export interface FunctionFile {
  /** Path below drizzle/functions, with forward slashes: `jobs/claim.sql`. */
  name: string;
  /** The function or view the file defines, without the schema. */
  object: string;
  kind: 'function' | 'view';
  sql: string;
  hash: string;
}

// Every file defines its object first; what follows (a REVOKE, the trigger a
// function serves) hangs on it.
const DEFINITION = /^CREATE OR REPLACE (FUNCTION|VIEW) sluice\.([a-z_][a-z0-9_]*)\b/m;

function listSqlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return listSqlFiles(path);
    return e.name.endsWith('.sql') ? [path] : [];
  });
}

/** The function files below `folder`, sorted by name; none when the folder does not exist. */
export function readFunctionFiles(folder: string): FunctionFile[] {
  if (!existsSync(folder)) return [];
  return listSqlFiles(folder)
    .map((path) => {
      const name = relative(folder, path).split(sep).join('/');
      const sql = readFileSync(path, 'utf8');
      const m = DEFINITION.exec(sql);
      if (!m) throw new Error(`functions/${name}: no CREATE OR REPLACE FUNCTION or VIEW sluice.<name> at the start of a line`);
      const kind = m[1] === 'VIEW' ? 'view' : 'function';
      return { name, object: m[2]!, kind, sql, hash: createHash('sha256').update(sql).digest('hex') } as const;
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

async function filesToApply(client: pg.ClientBase, files: FunctionFile[]): Promise<FunctionFile[]> {
  const { rows } = await client.query<{ name: string; hash: string }>(`SELECT name, hash FROM sluice.${FUNCTIONS_TABLE}`);
  const recorded = new Map(rows.map((r) => [r.name, r.hash]));
  const { rows: live } = await client.query<{ name: string }>(
    `SELECT proname AS name FROM pg_proc WHERE pronamespace = 'sluice'::regnamespace
     UNION SELECT relname FROM pg_class WHERE relnamespace = 'sluice'::regnamespace AND relkind = 'v'`,
  );
  const exists = new Set(live.map((r) => r.name));
  return files.filter((f) => recorded.get(f.name) !== f.hash || !exists.has(f.object));
}

/**
 * Runs each pending file until all are in. A SQL-language function or a view
 * is checked at creation and fails while something it uses is missing, so a
 * file that fails is tried again after the others, until a round adds nothing:
 * no order to keep by hand.
 */
export async function applyUntilFixpoint(
  client: pg.ClientBase,
  pending: FunctionFile[],
  onApplied: (file: FunctionFile) => Promise<void> = async () => {},
): Promise<void> {
  let left = pending;
  while (left.length > 0) {
    const failed: { file: FunctionFile; err: unknown }[] = [];
    for (const file of left) {
      await client.query('SAVEPOINT sluice_function_file');
      try {
        await client.query(file.sql);
        await client.query('RELEASE SAVEPOINT sluice_function_file');
      } catch (err) {
        await client.query('ROLLBACK TO SAVEPOINT sluice_function_file');
        failed.push({ file, err });
        continue;
      }
      await onApplied(file);
    }
    if (failed.length === left.length) {
      const { file, err } = failed[0]!;
      throw new Error(`functions/${file.name}: ${(err as Error).message}`, { cause: err });
    }
    left = failed.map((f) => f.file);
  }
}

/** Applies the changed and missing function files; returns the names applied. Call under the migration lock. */
export async function applyFunctionFiles(client: pg.ClientBase, files: FunctionFile[]): Promise<string[]> {
  await client.query('BEGIN');
  try {
    await client.query(
      `CREATE TABLE IF NOT EXISTS sluice.${FUNCTIONS_TABLE} (
         name text PRIMARY KEY,
         hash text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const pending = await filesToApply(client, files);
    await applyUntilFixpoint(client, pending);
    await client.query(
      `INSERT INTO sluice.${FUNCTIONS_TABLE} (name, hash)
       SELECT * FROM unnest($1::text[], $2::text[])
       ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = now()`,
      [pending.map((f) => f.name), pending.map((f) => f.hash)],
    );
    await client.query(`DELETE FROM sluice.${FUNCTIONS_TABLE} WHERE name <> ALL($1::text[])`, [files.map((f) => f.name)]);
    await client.query('COMMIT');
    return pending.map((f) => f.name);
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}
