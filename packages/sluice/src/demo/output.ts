// The demo's voice: section headings, indented notes, and queries shown
// with their results.
import type pg from 'pg';
import { formatTable } from './print-table.js';

const INDENT = '  ';

// Set when the last line printed was blank, so a heading after a table does
// not leave a double gap.
let afterBlank = true;

function print(text: string): void {
  console.log(text);
  afterBlank = text === '' || text.endsWith('\n');
}

export function heading(title: string): void {
  const rule = '─'.repeat(Math.max(4, 72 - title.length - 4));
  print(`${afterBlank ? '' : '\n'}── ${title} ${rule}\n`);
}

export function note(text = ''): void {
  print(text.split('\n').map((l) => (l ? INDENT + l : l)).join('\n'));
}

function indent(text: string, prefix = INDENT): string {
  return text.split('\n').map((l) => prefix + l).join('\n');
}

/** Prints the SQL as a user would type it, runs it, and prints the result as a table. */
export async function showQuery(db: pg.Pool | pg.PoolClient, sql: string): Promise<pg.QueryResult> {
  const text = sql.trim().replace(/;$/, '');
  const prompt = `${INDENT}sql> `;
  print(`${text};`.split('\n').map((l, i) => (i === 0 ? prompt : ' '.repeat(prompt.length)) + l).join('\n'));
  const result = await db.query(text);
  print(indent(formatTable(result.fields.map((f) => f.name), result.rows)));
  print('');
  return result;
}
