import pg from 'pg';
import { migrate } from '../../migrate.js';
import { EXIT_OK, UsageError, databaseUrl, parse } from '../usage.js';

export const migrateHelp = `sluice migrate [--database-url URL]

Applies sluice's migrations and function files (safe to run from several processes at
once) and prints each one it applied. Refuses a database migrated by a newer sluice.`;

export async function migrateCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, { 'database-url': { type: 'string' } });
  if (values.help) {
    out(migrateHelp);
    return EXIT_OK;
  }
  if (positionals.length) throw new UsageError(positionals[0]!, 'unexpected argument');
  const pool = new pg.Pool({ connectionString: databaseUrl(values['database-url'] as string | undefined), max: 1 });
  try {
    const { applied, functions } = await migrate(pool);
    for (const tag of applied) out(`applied ${tag}`);
    for (const file of functions) out(`applied functions/${file}`);
    const total = applied.length + functions.length;
    out(total ? `sluice schema is up to date (${applied.length} migrations and ${functions.length} function files applied)` : 'sluice schema is up to date (nothing to apply)');
  } finally {
    await pool.end();
  }
  return EXIT_OK;
}
