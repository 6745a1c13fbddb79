import { doctorChecks } from '../../sql/maintenance.js';
import { printRows, withSluice } from '../context.js';
import { EXIT_OK, databaseUrl, parse } from '../usage.js';
import { int, noPositionals, str } from './args.js';

/** Exit code when every check ran and at least one warns. */
export const EXIT_WARNINGS = 3;

export const doctorHelp = `sluice doctor [--long-xact-ms N] [--json] [--database-url URL]

Checks what makes a Postgres queue slow down over time:
  dead_tuples  sluice tables carrying many dead rows that vacuum cannot clear (horizon held back,
               autovacuum disabled on the table); dead rows it can clear are named, not warned about
  bloat        tables estimated mostly empty space, judged only from fresh statistics
  partitions   days from today to today + 2 without a history partition, rows in the default one
  long_xact    transactions older than --long-xact-ms (default 300000), prepared transactions and
               inactive replication slots holding back vacuum (other users' sessions need
               pg_read_all_stats to be seen)

Exit codes: 0 all checks ok, 3 some check warns, 1 the checks could not run, 2 bad arguments.`;

export async function doctorCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, {
    'database-url': { type: 'string' },
    'long-xact-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(doctorHelp);
    return EXIT_OK;
  }
  noPositionals(positionals);
  const longXactMs = int('--long-xact-ms', str(values, 'long-xact-ms'), { min: 1_000, max: 2_147_483_647 }) ?? 300_000;
  const url = databaseUrl(str(values, 'database-url'));
  const checks = await withSluice(url, (s) => doctorChecks(s.pool, longXactMs));
  if (values.json) out(JSON.stringify({ checks }, null, 2));
  else printRows(out, checks.map((c) => ({ check: c.check, status: c.status === 'warn' ? 'WARN' : 'ok', subject: c.subject, detail: c.detail })), false);
  return checks.some((c) => c.status === 'warn') ? EXIT_WARNINGS : EXIT_OK;
}
