// What every database command shares: a Sluice on its own small pool, closed
// afterwards; with a read replica URL, what only reads goes there. Its
// statements are unnamed (poolMode 'transaction'), so every command works
// through a transaction pooler too; a command sends a handful of statements,
// and preparing them would save nothing.
import { pino } from 'pino';
import { Sluice } from '../client.js';

/** Runs fn once the schema is found migrated (else SchemaNotMigratedError, exit code 4). */
export async function withSluice<T>(url: string, fn: (sluice: Sluice) => Promise<T>, readUrl?: string): Promise<T> {
  const sluice = new Sluice({ connectionString: url, readConnectionString: readUrl, poolSize: 2, poolMode: 'transaction', logger: pino({ level: 'silent' }) });
  try {
    await sluice.ready();
    return await fn(sluice);
  } finally {
    await sluice.close();
  }
}

/** Prints rows as JSON (for scripts) or as an aligned text table. */
export function printRows(out: (s: string) => void, rows: Record<string, unknown>[], json: boolean): void {
  if (json) {
    out(JSON.stringify(rows, null, 2));
    return;
  }
  if (rows.length === 0) {
    out('(none)');
    return;
  }
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  out(cols.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out(cols.map((c, i) => cell(r[c]).padEnd(widths[i]!)).join('  '));
}
