import {
  METRICS_RETENTION_MS_DEFAULT,
  PARTITIONS_AHEAD_DAYS_DEFAULT,
  PRUNE_BATCH_SIZE_DEFAULT,
  runMaintenance,
} from '../../services/maintenance.js';
import { RETENTION_MS_MAX } from '../../config.js';
import { withSluice } from '../context.js';
import { EXIT_OK, databaseUrl, parse } from '../usage.js';
import { int, noPositionals, str } from './args.js';

export const pruneHelp = `sluice prune [--partitions-ahead-days N] [--metrics-retention-ms N] [--batch-size N] [--json]

Runs one round of retention, as every worker does hourly:
  creates history partitions from today to today + N days (default ${PARTITIONS_AHEAD_DAYS_DEFAULT}),
  drops day partitions past every queue's retention (queues.retention_ms, default 7 days),
  deletes finished jobs past a shorter per-queue retention and rows in the default partition,
  deletes per-minute metrics older than --metrics-retention-ms (default ${METRICS_RETENTION_MS_DEFAULT / 86_400_000} days).
Dead jobs are kept until \`sluice dlq purge\`. Rows are deleted --batch-size (default ${PRUNE_BATCH_SIZE_DEFAULT}) at a time.

Exit codes: 0 ok (also when another process was running maintenance: nothing done), 1 failed, 2 bad arguments.`;

export async function pruneCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, {
    'database-url': { type: 'string' },
    'partitions-ahead-days': { type: 'string' },
    'metrics-retention-ms': { type: 'string' },
    'batch-size': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(pruneHelp);
    return EXIT_OK;
  }
  noPositionals(positionals);
  const options = {
    partitionsAheadDays: int('--partitions-ahead-days', str(values, 'partitions-ahead-days'), { min: 0, max: 366 }),
    metricsRetentionMs: int('--metrics-retention-ms', str(values, 'metrics-retention-ms'), { min: 60_000, max: RETENTION_MS_MAX }),
    batchSize: int('--batch-size', str(values, 'batch-size'), { max: 1_000_000 }),
  };
  const url = databaseUrl(str(values, 'database-url'));
  const report = await withSluice(url, (s) => runMaintenance(s.pool, options));
  if (values.json) out(JSON.stringify(report, null, 2));
  else if (!report.ran) out('another process is running maintenance right now; nothing done');
  else {
    out(`history partitions created: ${report.partitionsCreated}`);
    out(`history partitions dropped: ${report.partitionsDropped.length ? report.partitionsDropped.join(', ') : 0}`);
    out(`history rows deleted:       ${report.historyRowsDeleted}`);
    out(`metrics rows deleted:       ${report.metricsRowsDeleted}`);
    // One round stops after a bounded number of batches; a worker's leader carries on by itself.
    if (report.backlog) out('expired rows are left past this round\'s limit: run it again');
  }
  return EXIT_OK;
}
