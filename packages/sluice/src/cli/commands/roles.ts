import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { EXIT_OK, UsageError, parse } from '../usage.js';
import { noPositionals, str } from './args.js';

/**
 * sql/roles.sql inside the package, found from this module (src/ or dist/,
 * both at the same depth), never from the caller's working directory.
 */
export const ROLES_SQL_PATH = fileURLToPath(new URL('../../../sql/roles.sql', import.meta.url));

export const rolesHelp = `sluice roles [--owner NAME] [--runtime NAME] [--readonly NAME] [--json]

Prints the SQL script that creates three roles and grants them what they need:
  owner     owns the sluice schema and runs migrations (default name sluice_owner)
  runtime   enqueues, claims, completes; no DDL (default sluice_runtime)
  readonly  reads tables and views for dashboards (default sluice_readonly)
Run it as a superuser (or a role with CREATEROLE that owns the schema) in the application's
database:  sluice roles | psql "$DATABASE_URL" -v ON_ERROR_STOP=1
The names given here are set at the top of the script. --json prints { "sql": "<the script>" }.
Exit codes: 0 ok, 2 bad arguments.`;

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function rolesCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, {
    owner: { type: 'string' },
    runtime: { type: 'string' },
    readonly: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(rolesHelp);
    return EXIT_OK;
  }
  noPositionals(positionals);
  const names: Record<string, string | undefined> = { owner: str(values, 'owner'), runtime: str(values, 'runtime'), readonly: str(values, 'readonly') };
  const settings: string[] = [];
  for (const [kind, value] of Object.entries(names)) {
    if (value === undefined) continue;
    if (!ROLE_NAME.test(value)) throw new UsageError(`--${kind}`, 'must be a lower-case SQL identifier: letters, digits, _ (max 63)');
    settings.push(`SET sluice.${kind}_role = '${value}';`);
  }
  const script = await readFile(ROLES_SQL_PATH, 'utf8');
  const sql = (settings.length ? `${settings.join('\n')}\n` : '') + script.trimEnd();
  out(values.json ? JSON.stringify({ sql }) : sql);
  return EXIT_OK;
}
