import pg from 'pg';
import { migrate } from '../../migrate.js';
import { EXIT_OK, UsageError, databaseUrl, parse } from '../usage.js';

export const migrateHelp = `sluice migrate [--json] [--database-url URL]

Applies sluice's migrations and function files (safe to run from several processes at
once) and prints each one it applied; "sluice schema is up to date (nothing to apply)" only
when it applied none. --json prints { "applied": [...], "functions": [...] }.
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
    const result = await migrate(pool);
    if (values.json) out(JSON.stringify(result, null, 2));
    else if (result.applied.length === 0 && result.functions.length === 0) out('sluice schema is up to date (nothing to apply)');
    else {
      for (const tag of result.applied) out(`applied ${tag}`);
      for (const file of result.functions) out(`applied functions/${file}`);
    }
  } finally {
    await pool.end();
  }
  return EXIT_OK;
}
