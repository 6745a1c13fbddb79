// Renders query results the way psql does, so what the demo prints looks
// like what a user sees when they run the same query themselves.

const MAX_CELL_WIDTH = 60;

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString().replace('T', ' ').slice(0, 23);
  if (typeof value === 'number' && !Number.isInteger(value)) return String(Math.round(value * 1000) / 1000);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > MAX_CELL_WIDTH ? `${oneLine.slice(0, MAX_CELL_WIDTH - 1)}…` : oneLine;
}

// pg hands bigint and numeric columns over as strings; they still read best
// right-aligned.
function isNumeric(value: unknown): boolean {
  return typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value));
}

/** A psql-style table: header, rule, aligned rows, and a row count. */
export function formatTable(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const cells = rows.map((row) => columns.map((c) => clip(formatCell(row[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const rightAligned = columns.map((c) => rows.length > 0 && rows.every((r) => r[c] == null || isNumeric(r[c])));
  const line = (values: string[], align: boolean) =>
    ' ' +
    values
      .map((v, i) => (align && rightAligned[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  return [
    line(columns.map((c, i) => c.padStart(Math.floor((widths[i]! + c.length) / 2)).padEnd(widths[i]!)), false),
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...cells.map((r) => line(r, true)),
    `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`,
  ].join('\n');
}
