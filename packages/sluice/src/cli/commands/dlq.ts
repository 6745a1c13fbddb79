import { RETENTION_MS_MAX } from '../../config.js';
import { deadIdsWhere, deadPurge } from '../../sql/dead-jobs.js';
import { jobList } from '../../sql/job-list.js';
import { withSluice } from '../context.js';
import { EXIT_OK, UsageError, databaseUrl, parse } from '../usage.js';
import { int, jobId, name, str } from './args.js';
import { listFilter, printJobPage } from './jobs.js';

export const dlqHelp = `sluice dlq <subcommand> [options]

  list [--queue NAME] [--name JOB] [--limit N] [--before ID] [--json]
        dead jobs, newest first, with why they died and their last error
  replay <id>...                      put these dead jobs back in their queues (all must exist);
                                      a job waits again for its parents still to complete, and
                                      one whose parent is dead (not replayed with it) or was
                                      cancelled refuses the whole replay
  replay --queue NAME [--name JOB] [--limit N]
                                      replay the oldest N (default 1000) dead jobs of a queue
  purge <id>... | [--queue NAME] [--name JOB] [--older-than-ms N] | --all
                                      delete dead jobs for good; a filter or --all is required

Options common to all: --database-url URL (default: DATABASE_URL), --json.
Exit codes: 0 ok, 1 failed (an id is not dead, a parent in the way, database unreachable), 2 bad arguments.`;

const OPTIONS = {
  'database-url': { type: 'string' },
  queue: { type: 'string' },
  name: { type: 'string' },
  limit: { type: 'string' },
  before: { type: 'string' },
  'older-than-ms': { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** The options each subcommand reads: any other is refused, not ignored (an ignored --limit on purge deleted every dead job of the queue). */
const SUBCOMMAND_OPTIONS: Record<string, readonly string[]> = {
  list: ['queue', 'name', 'limit', 'before'],
  replay: ['queue', 'name', 'limit'],
  purge: ['queue', 'name', 'older-than-ms', 'all'],
};

export async function dlqCommand(args: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, OPTIONS);
  if (!sub || sub === '--help' || sub === '-h' || values.help) {
    out(dlqHelp);
    return EXIT_OK;
  }
  const allowed = SUBCOMMAND_OPTIONS[sub];
  if (allowed) {
    for (const [key, value] of Object.entries(values)) {
      if (value !== undefined && key !== 'database-url' && key !== 'json' && !allowed.includes(key)) {
        throw new UsageError(`--${key}`, `is not an option of dlq ${sub}`);
      }
    }
  }
  const url = () => databaseUrl(str(values, 'database-url'));
  const json = Boolean(values.json);
  const ids = positionals.map((p) => jobId('<id>', p));
  const queue = name('--queue', str(values, 'queue'));
  const jobName = name('--name', str(values, 'name'));
  switch (sub) {
    case 'list': {
      if (ids.length) throw new UsageError(positionals[0]!, 'unexpected argument');
      const filter = { ...listFilter(values), state: 'dead' as const };
      printJobPage(out, await withSluice(url(), (s) => jobList(s.pool, filter)), json);
      return EXIT_OK;
    }
    case 'replay': {
      if (ids.length && (queue || jobName)) throw new UsageError('--queue', 'give ids or filters, not both');
      if (!ids.length && !queue) throw new UsageError('<id>', 'give dead job ids, or --queue to replay a queue');
      const limit = int('--limit', str(values, 'limit'), { max: 100_000 }) ?? 1_000;
      const replayed = await withSluice(url(), async (s) => {
        const chosen = ids.length ? ids : await deadIdsWhere(s.pool, { queue, name: jobName, limit });
        return chosen.length ? s.replayDead(chosen) : [];
      });
      out(json ? JSON.stringify({ replayed }) : `replayed ${replayed.length} dead job(s)`);
      return EXIT_OK;
    }
    case 'purge': {
      // At most 100 years: now() minus much more falls off the timestamp range.
      const olderThanMs = int('--older-than-ms', str(values, 'older-than-ms'), { min: 0, max: RETENTION_MS_MAX });
      const filtered = ids.length > 0 || queue !== null || jobName !== null || olderThanMs !== undefined;
      if (!filtered && !values.all) throw new UsageError('--all', 'give ids, --queue, --name or --older-than-ms, or --all to purge every dead job');
      if (filtered && values.all) throw new UsageError('--all', 'cannot be combined with ids or filters');
      const n = await withSluice(url(), (s) =>
        deadPurge(s.pool, {
          queue,
          name: jobName,
          ids: ids.length ? ids : null,
          olderThanMs: olderThanMs ?? null,
          all: Boolean(values.all),
        }),
      );
      out(json ? JSON.stringify({ purged: n }) : `purged ${n} dead job(s)`);
      return EXIT_OK;
    }
    default:
      throw new UsageError(sub, 'unknown dlq subcommand (list, replay, purge)');
  }
}
