import { RETENTION_MS_MAX } from '../../config.js';
import { queueSettingsAll } from '../../sql/metrics.js';
import { queueConfigure, type QueueSettingsRow } from '../../sql/queues.js';
import { printRows, withSluice } from '../context.js';
import { EXIT_OK, UsageError, databaseUrl, parse } from '../usage.js';
import { bool, int, intOrNone, name, str, type Values } from './args.js';

export const queuesHelp = `sluice queues <subcommand> [options]

  list [--json]                 every queue with its settings
  pause <name>                  workers stop claiming from the queue (running jobs finish)
  resume <name>
  set <name> [settings]         change settings; only those given change ("none" clears a limit)
      --concurrency N|none            jobs running at once across all workers
      --weight N                      share of a worker's slots against its other queues
      --max-depth N|none              enqueue beyond this many waiting jobs meets the overflow policy
      --alert-max-depth N|none        alert when more jobs than this wait
      --alert-max-wait-ms N|none      alert when the oldest due job has waited longer
      --alert-max-error-rate F|none   alert when this share (0..1) of attempts failed over 5 minutes
      --alert-no-worker true|false    alert when no live worker serves the queue
      --keep-history true|false       keep completed jobs in sluice.job_history
      --retention-ms N                how long finished jobs are kept (default 7 days)

Options common to all: --database-url URL (default: DATABASE_URL).
Exit codes: 0 ok, 1 failed, 2 bad arguments (nothing written).`;

const SETTINGS = {
  concurrency: { type: 'string' },
  weight: { type: 'string' },
  'max-depth': { type: 'string' },
  'alert-max-depth': { type: 'string' },
  'alert-max-wait-ms': { type: 'string' },
  'alert-max-error-rate': { type: 'string' },
  'alert-no-worker': { type: 'string' },
  'keep-history': { type: 'string' },
  'retention-ms': { type: 'string' },
} as const;

const OPTIONS = { 'database-url': { type: 'string' }, json: { type: 'boolean' }, ...SETTINGS } as const;

// The ranges of queueSettingsSchema (config.ts): a value it refuses would reach the database as a raw error.
const INT32 = { max: 2_147_483_647 };
const SLOTS = { max: 1_000_000 };
const DEPTH = { max: 2_000_000_000 };

function errorRate(value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === 'none') return null;
  const n = Number(value);
  // Stored as real: a rate under about 1e-38 would not fit, and none under 1e-6 means anything.
  if (!/^(0|1|0?\.\d+|1\.0*)$/.test(value) || n < 0 || n > 1 || (n > 0 && n < 1e-6)) {
    throw new UsageError('--alert-max-error-rate', 'must be 0, a number from 0.000001 to 1, or none');
  }
  return n;
}

/** The settings given on the command line, checked; undefined ones are left out. */
export function settingsFrom(values: Values): QueueSettingsRow {
  const s: QueueSettingsRow = {
    concurrency: intOrNone('--concurrency', str(values, 'concurrency'), SLOTS),
    weight: int('--weight', str(values, 'weight'), SLOTS),
    max_depth: intOrNone('--max-depth', str(values, 'max-depth'), DEPTH),
    alert_max_depth: intOrNone('--alert-max-depth', str(values, 'alert-max-depth'), DEPTH),
    alert_max_wait_ms: intOrNone('--alert-max-wait-ms', str(values, 'alert-max-wait-ms'), INT32),
    alert_max_error_rate: errorRate(str(values, 'alert-max-error-rate')),
    alert_no_worker: bool('--alert-no-worker', str(values, 'alert-no-worker')),
    keep_history: bool('--keep-history', str(values, 'keep-history')),
    retention_ms: int('--retention-ms', str(values, 'retention-ms'), { min: 60_000, max: RETENTION_MS_MAX }),
  };
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as QueueSettingsRow;
}

function oneName(sub: string, positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('<name>', `queues ${sub} takes exactly one queue name`);
  return name('<name>', positionals[0])!;
}

export async function queuesCommand(args: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, OPTIONS);
  if (!sub || sub === '--help' || sub === '-h' || values.help) {
    out(queuesHelp);
    return EXIT_OK;
  }
  const url = () => databaseUrl(str(values, 'database-url'));
  const json = Boolean(values.json);
  const settingGiven = Object.keys(SETTINGS).find((k) => values[k] !== undefined);
  if (sub !== 'set' && settingGiven) throw new UsageError(`--${settingGiven}`, `only queues set takes settings`);
  switch (sub) {
    case 'list': {
      if (positionals.length) throw new UsageError(positionals[0]!, 'unexpected argument');
      printRows(out, (await withSluice(url(), (s) => queueSettingsAll(s.pool))) as unknown as Record<string, unknown>[], json);
      return EXIT_OK;
    }
    case 'pause':
    case 'resume': {
      const queue = oneName(sub, positionals);
      await withSluice(url(), (s) => (sub === 'pause' ? s.queues.pause(queue) : s.queues.resume(queue)));
      out(json ? JSON.stringify({ queue, paused: sub === 'pause' }) : `queue ${queue} ${sub === 'pause' ? 'paused' : 'resumed'}`);
      return EXIT_OK;
    }
    case 'set': {
      const queue = oneName(sub, positionals);
      const settings = settingsFrom(values);
      if (Object.keys(settings).length === 0) throw new UsageError('<settings>', 'give at least one setting, e.g. --concurrency 5');
      await withSluice(url(), (s) => queueConfigure(s.pool, queue, settings));
      out(json ? JSON.stringify({ queue, settings }) : `queue ${queue} updated: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(', ')}`);
      return EXIT_OK;
    }
    default:
      throw new UsageError(sub, 'unknown queues subcommand (list, pause, resume, set)');
  }
}
