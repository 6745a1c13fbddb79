// `sluice dashboard`: serves @sluice/dashboard on its own port. The package
// is loaded only here, at run time, so sluice does not depend on it.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Sluice } from '../../client.js';
import { HTTP_TOKEN_MIN_LENGTH } from '../../http/index.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, databaseUrl, parse, readDatabaseUrl } from '../usage.js';
import { str, untilSignal, type Values } from './args.js';

export const dashboardHelp = `sluice dashboard [--port N] [--host H] (--token-file F | --user U --password-file F | --insecure-local)
                 [--read-only] [--payloads show|hide] [--stack-traces show|hide] [--base-path /p] [--trust-proxy]
                 [--database-url URL] [--read-database-url URL]

Serves the web dashboard (the @sluice/dashboard package): queues, jobs, dead letters, cron, workers.
It refuses to start without a way to sign in:
  --token-file F      sign in with the token in file F (at least ${HTTP_TOKEN_MIN_LENGTH} characters; a final newline is
                      dropped), or set SLUICE_DASHBOARD_TOKEN
  --user U --password-file F
                      sign in with a user and the password in file F, or set SLUICE_DASHBOARD_PASSWORD
  --token T, --password P
                      the same on the command line: any local user can read it there (ps), so prefer
                      the file or the environment; the same holds for --database-url (use DATABASE_URL)
  --insecure-local    no sign-in; then it listens on 127.0.0.1 only
  --read-only         show no action and refuse every one; payloads and stack traces are hidden
                      unless --payloads show / --stack-traces show
  --port N            default 4000; --host H default 127.0.0.1 (put TLS in front before exposing it)
  --read-database-url URL
                      pages read from this replica (default: SLUICE_READ_DATABASE_URL); actions
                      still write to --database-url; the overview shows the replica's lag
  --trust-proxy       take the client's address from X-Forwarded-For (for the sign-in lockout);
                      only behind a proxy that sets it
Run it under the read-only database role (see \`sluice roles\`) together with --read-only.`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'read-database-url': { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  'password-file': { type: 'string' },
  'insecure-local': { type: 'boolean' },
  'read-only': { type: 'boolean' },
  payloads: { type: 'string' },
  'stack-traces': { type: 'string' },
  'base-path': { type: 'string' },
  'trust-proxy': { type: 'boolean' },
} as const;

/** The part of @sluice/dashboard this command uses. */
interface DashboardModule {
  startDashboard(options: Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }>;
}

function showHide(arg: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'show') return true;
  if (value === 'hide') return false;
  throw new UsageError(arg, 'must be show or hide');
}

/** A secret from --NAME or --NAME-file (its content, without a final newline); not both. */
function secret(values: Values, name: 'token' | 'password'): string | undefined {
  const inline = str(values, name);
  const file = str(values, `${name}-file`);
  if (file === undefined) return inline;
  if (inline !== undefined) throw new UsageError(`--${name}-file`, `give --${name} or --${name}-file, not both`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${name}-file`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return text.replace(/\r?\n$/, '');
}

async function loadDashboard(): Promise<DashboardModule | null> {
  const specifier = '@sluice/dashboard';
  try {
    return (await import(specifier)) as DashboardModule;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(specifier)) return null;
    throw err;
  }
}

export async function dashboardCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    out(dashboardHelp);
    return EXIT_OK;
  }
  if (positionals.length) throw new UsageError(positionals[0]!, 'unexpected argument');
  const portText = str(values, 'port') ?? '4000';
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65_535) throw new UsageError('--port', 'must be an integer from 0 to 65535');
  const token = secret(values, 'token') ?? (process.env.SLUICE_DASHBOARD_TOKEN || undefined);
  const user = str(values, 'user');
  const password = secret(values, 'password') ?? (user ? process.env.SLUICE_DASHBOARD_PASSWORD || undefined : undefined);
  const insecure = Boolean(values['insecure-local']);
  const host = str(values, 'host');
  const ways = [token !== undefined, user !== undefined || password !== undefined, insecure].filter(Boolean).length;
  if (ways === 0) throw new UsageError('--token', 'give --token-file (or --token, or SLUICE_DASHBOARD_TOKEN), or --user and --password-file, or --insecure-local (no sign-in, 127.0.0.1 only)');
  if (ways > 1) throw new UsageError('--token', 'give only one of --token, --user/--password and --insecure-local');
  if (token !== undefined && token.length < HTTP_TOKEN_MIN_LENGTH) throw new UsageError('--token', `must be at least ${HTTP_TOKEN_MIN_LENGTH} characters`);
  if ((user === undefined) !== (password === undefined)) throw new UsageError(user === undefined ? '--user' : '--password', 'give both --user and --password');
  if (insecure && host !== undefined && host !== '127.0.0.1') throw new UsageError('--host', '--insecure-local listens on 127.0.0.1 only');
  const basePath = str(values, 'base-path');
  const showPayloads = showHide('--payloads', str(values, 'payloads'));
  const showStackTraces = showHide('--stack-traces', str(values, 'stack-traces'));
  const url = databaseUrl(str(values, 'database-url'));

  const mod = await loadDashboard();
  if (!mod) {
    out('sluice dashboard: the @sluice/dashboard package is not installed: npm install @sluice/dashboard');
    return EXIT_FAILURE;
  }
  const logger = pino({ name: 'sluice-dashboard', level: process.env.SLUICE_LOG_LEVEL ?? 'info' });
  // Unnamed statements: the dashboard may be pointed at a transaction pooler.
  const sluice = new Sluice({
    connectionString: url,
    readConnectionString: readDatabaseUrl(str(values, 'read-database-url')),
    poolSize: 4,
    poolMode: 'transaction',
    logger,
  });
  const signal = untilSignal();
  try {
    // Refused before serving: a dashboard on an unmigrated database shows nothing but errors.
    await sluice.ready();
    const server = await mod.startDashboard({
      sluice,
      auth: insecure ? 'insecure-local' : token !== undefined ? { token } : { user, password },
      port: Number(portText),
      ...(host !== undefined ? { host } : {}),
      ...(basePath !== undefined ? { basePath } : {}),
      readOnly: Boolean(values['read-only']),
      trustProxy: Boolean(values['trust-proxy']),
      ...(showPayloads !== undefined ? { showPayloads } : {}),
      ...(showStackTraces !== undefined ? { showStackTraces } : {}),
      logger,
    });
    out(`dashboard on ${server.url}/${insecure ? ' (no sign-in: 127.0.0.1 only)' : ''}${values['read-only'] ? ' (read-only)' : ''}`);
    await signal.promise;
    await server.close();
    return EXIT_OK;
  } finally {
    signal.dispose();
    await sluice.close();
  }
}
