import { jobList, type JobListPage } from '../../sql/job-list.js';
import { printRows, withSluice } from '../context.js';
import { EXIT_OK, UsageError, databaseUrl, parse, readDatabaseUrl } from '../usage.js';
import { int, jobId, name, state, str, type Values } from './args.js';

export const jobsHelp = `sluice jobs <subcommand> [options]

  list [--queue NAME] [--state STATE] [--name JOB] [--limit N] [--before ID] [--json]
        newest first, live, finished and dead jobs together; a full page prints the
        --before value of the next one (keyset pagination: stable while jobs arrive)
  show <id> [--payload] [--json]   one job with its error history; the payload only with --payload
  retry <id>                       run a dead job or one waiting for its retry now
  cancel <id>                      cancel a live job (a running one's handler is signalled)

STATE is one of waiting, scheduled, available, running, completed, cancelled, dropped, dead.
Options common to all: --database-url URL (default: DATABASE_URL).
list and show read from --read-database-url URL (default: SLUICE_READ_DATABASE_URL) when given: a
replica, whose rows trail the primary by its lag.
Exit codes: 0 ok, 1 failed (no such job, database unreachable), 2 bad arguments.`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'read-database-url': { type: 'string' },
  queue: { type: 'string' },
  state: { type: 'string' },
  name: { type: 'string' },
  limit: { type: 'string' },
  before: { type: 'string' },
  payload: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/**
 * A page of jobs, then the cursor of the next page when there is one. The
 * JSON keeps the column names of sluice.job_list, which scripts read.
 */
export function printJobPage(out: (s: string) => void, page: JobListPage, json: boolean): void {
  const { nextBefore } = page;
  if (json) {
    const jobs = page.jobs.map((r) => ({
      id: r.id,
      queue: r.queue,
      name: r.name,
      state: r.state,
      priority: r.priority,
      attempt: r.attempt,
      max_attempts: r.maxAttempts,
      run_at: r.runAt,
      created_at: r.createdAt,
      attempted_at: r.attemptedAt,
      finished_at: r.finishedAt,
      locked_by: r.lockedBy,
      reason: r.reason,
      last_error: r.lastError,
    }));
    out(JSON.stringify({ jobs, nextBefore }, null, 2));
    return;
  }
  printRows(
    out,
    page.jobs.map((r) => ({ id: r.id, queue: r.queue, name: r.name, state: r.state, attempt: `${r.attempt}/${r.maxAttempts}`, run_at: r.runAt, finished_at: r.finishedAt, reason: r.reason, last_error: r.lastError })),
    false,
  );
  if (nextBefore !== null) out(`next page: --before ${nextBefore}`);
}

export function listFilter(values: Values) {
  return {
    queue: name('--queue', str(values, 'queue')),
    name: name('--name', str(values, 'name')),
    limit: int('--limit', str(values, 'limit'), { max: 10_000 }) ?? 50,
    beforeId: str(values, 'before') === undefined ? null : jobId('--before', str(values, 'before')),
  };
}

function oneId(sub: string, positionals: string[]): number {
  if (positionals.length !== 1) throw new UsageError('<id>', `jobs ${sub} takes exactly one job id`);
  return jobId('<id>', positionals[0]);
}

export async function jobsCommand(args: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, OPTIONS);
  if (!sub || sub === '--help' || sub === '-h' || values.help) {
    out(jobsHelp);
    return EXIT_OK;
  }
  const url = () => databaseUrl(str(values, 'database-url'));
  const readUrl = readDatabaseUrl(str(values, 'read-database-url'));
  const json = Boolean(values.json);
  switch (sub) {
    case 'list': {
      if (positionals.length) throw new UsageError(positionals[0]!, 'unexpected argument');
      const filter = { ...listFilter(values), state: state('--state', str(values, 'state')) };
      printJobPage(out, await withSluice(url(), (s) => jobList(s.readPool, filter), readUrl), json);
      return EXIT_OK;
    }
    case 'show': {
      const id = oneId(sub, positionals);
      const job = await withSluice(url(), (s) => s.getJob(id, { tx: s.readPool }), readUrl);
      const shown = { ...job, payload: values.payload ? job.payload : undefined };
      if (json) {
        out(JSON.stringify(shown, null, 2));
        return EXIT_OK;
      }
      const { errors, payload, ...fields } = shown;
      for (const [k, v] of Object.entries(fields)) out(`${k.padEnd(12)} ${v instanceof Date ? v.toISOString() : String(v ?? '')}`);
      out(`errors       ${errors.length === 0 ? '(none)' : ''}`);
      for (const e of errors) out(`  #${e.attempt} ${e.at} ${e.kind} ${e.name}: ${e.message}`);
      out(values.payload ? `payload      ${JSON.stringify(payload)}` : 'payload      (hidden; add --payload to show it)');
      return EXIT_OK;
    }
    case 'retry': {
      const id = oneId(sub, positionals);
      await withSluice(url(), (s) => s.retry(id));
      out(json ? JSON.stringify({ id, retried: true }) : `job ${id} will run again now`);
      return EXIT_OK;
    }
    case 'cancel': {
      const id = oneId(sub, positionals);
      const was = await withSluice(url(), (s) => s.cancel(id));
      out(json ? JSON.stringify({ id, cancelled: true, was }) : `job ${id} cancelled (was ${was})`);
      return EXIT_OK;
    }
    default:
      throw new UsageError(sub, 'unknown jobs subcommand (list, show, retry, cancel)');
  }
}
