import { UnknownJobError, ValidationError } from '../../errors.js';
import type { MisfirePolicy } from '../../schedule.js';
import { printRows, withSluice } from '../context.js';
import { EXIT_OK, UsageError, databaseUrl, parse } from '../usage.js';
import { int, name as checkedName, str } from './args.js';

export const cronHelp = `sluice cron <subcommand> [options]

  add <name> --cron EXPR --job NAME [--payload JSON] [--timezone TZ] [--misfire skip|run_once|run_all] [--run-all-cap N]
  list [--json]
  enable <name> | disable <name> | remove <name>
  run-now <name>          enqueue the schedule's job now, outside its timetable

EXPR is 5 fields (minute first), 6 fields (second first) or a preset (@hourly, @daily, ...).
Options common to all: --database-url URL (default: DATABASE_URL), --json (what was listed, saved
or changed, as JSON).`;

const OPTIONS = {
  'database-url': { type: 'string' },
  cron: { type: 'string' },
  job: { type: 'string' },
  payload: { type: 'string' },
  timezone: { type: 'string' },
  misfire: { type: 'string' },
  'run-all-cap': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function oneName(sub: string, positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('<name>', `cron ${sub} takes exactly one schedule name`);
  return checkedName('<name>', positionals[0])!;
}

/** The argument a schedule() field comes from, for a ValidationError naming the field. */
function argumentOf(field: string): string {
  const key = field.replace(/^schedule\.?/, '').split('.')[0];
  if (!key || key === 'name') return '<name>';
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export async function cronCommand(args: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, OPTIONS);
  if (!sub || sub === '--help' || sub === '-h' || values.help) {
    out(cronHelp);
    return EXIT_OK;
  }
  const url = () => databaseUrl(values['database-url'] as string | undefined);
  switch (sub) {
    case 'add': {
      const name = oneName(sub, positionals);
      if (!values.cron) throw new UsageError('--cron', 'is required');
      if (!values.job) throw new UsageError('--job', 'is required');
      let payload: unknown = {};
      if (values.payload !== undefined) {
        try {
          payload = JSON.parse(values.payload as string);
        } catch {
          throw new UsageError('--payload', 'must be valid JSON');
        }
      }
      // An empty --timezone or --misfire goes to schedule(), which refuses it: not the default silently.
      const timezone = str(values, 'timezone');
      const misfire = str(values, 'misfire') as MisfirePolicy | undefined;
      const runAllCap = int('--run-all-cap', str(values, 'run-all-cap'), { max: 10_000 });
      try {
        const def = await withSluice(url(), (s) =>
          s.schedules.add({
            name,
            cron: values.cron as string,
            job: values.job as string,
            payload,
            ...(timezone !== undefined ? { timezone } : {}),
            ...(misfire !== undefined ? { misfire } : {}),
            ...(runAllCap !== undefined ? { runAllCap } : {}),
          }),
        );
        out(values.json ? JSON.stringify(def, null, 2) : `schedule ${def.name} saved: ${def.cron} (${def.timezone}) → ${def.jobName}`);
      } catch (err) {
        // A bad expression or zone is bad input: usage exit code, nothing written.
        if (err instanceof ValidationError) throw new UsageError(argumentOf(err.field), err.message, { cause: err });
        if (err instanceof UnknownJobError) throw new UsageError('--job', err.message);
        throw err;
      }
      return EXIT_OK;
    }
    case 'list': {
      const rows = await withSluice(url(), (s) => s.schedules.list());
      printRows(
        out,
        rows.map((r) => ({ name: r.name, cron: r.cron, timezone: r.timezone, job: r.jobName, enabled: r.enabled, misfire: r.misfire, next_run_at: r.nextRunAt, last_run_at: r.lastRunAt, last_error: r.lastError })),
        Boolean(values.json),
      );
      return EXIT_OK;
    }
    case 'enable':
    case 'disable':
    case 'remove': {
      const name = oneName(sub, positionals);
      await withSluice(url(), (s) => s.schedules[sub](name));
      out(values.json ? JSON.stringify({ name, [`${sub}d`]: true }) : `schedule ${name}: ${sub}d`);
      return EXIT_OK;
    }
    case 'run-now': {
      const name = oneName(sub, positionals);
      const id = await withSluice(url(), (s) => s.schedules.runNow(name));
      out(values.json ? JSON.stringify({ id }) : `enqueued job ${id}`);
      return EXIT_OK;
    }
    default:
      throw new UsageError(sub, 'unknown cron subcommand (add, list, enable, disable, remove, run-now)');
  }
}
