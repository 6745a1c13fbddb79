import pg from 'pg';
import { migrate } from '../../migrate.js';
import { EXIT_OK, UsageError, databaseUrl, parse } from '../usage.js';

export const migrateHelp = `sluice migrate [--json] [--database-url URL]

Applies sluice's migrations (safe to run from several processes at once) and prints each one
it applied, numbered migrations first, then the SQL function files that changed; "sluice schema
is up to date" when it applied none. --json prints { "migrations": [...], "functions": [...] }.
Refuses a database migrated by a newer sluice.

Exit codes: 0 ok, 1 the migrations failed or the database is newer, 2 bad arguments.`;

export async function migrateCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, { 'database-url': { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    out(migrateHelp);
    return EXIT_OK;
  }
  if (positionals.length) throw new UsageError(positionals[0]!, 'unexpected argument');
  const pool = new pg.Pool({ connectionString: databaseUrl(values['database-url'] as string | undefined), max: 1 });
  try {
    const report = await migrate(pool);
    if (values.json) out(JSON.stringify(report, null, 2));
    else if (report.migrations.length === 0 && report.functions.length === 0) out('sluice schema is up to date');
    else {
      for (const tag of report.migrations) out(`applied migration ${tag}`);
      for (const name of report.functions) out(`applied function ${name}`);
    }
  } finally {
    await pool.end();
  }
  return EXIT_OK;
}
