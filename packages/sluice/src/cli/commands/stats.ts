import { alertListActive, type ActiveAlert } from '../../sql/alerts.js';
import { queueStatsAll, replicaLag, type QueueStats, type ReplicaLag } from '../../sql/metrics.js';
import { printRows, withSluice } from '../context.js';
import { EXIT_OK, databaseUrl, parse, readDatabaseUrl } from '../usage.js';
import { int, name, noPositionals, str, untilSignal } from './args.js';

export const statsHelp = `sluice stats [--queue NAME] [--watch] [--interval-ms N] [--dead-after-ms N] [--json] [--database-url URL] [--read-database-url URL]

One row per queue: jobs by state (~ marks counts estimated from planner statistics on
large tables), how long the oldest due job has waited, completions per second over 1 and
5 minutes, the failed share of attempts over 5 minutes, live workers; then active alerts.

  --watch           redraw every --interval-ms (default 2000) until Ctrl-C; with --json,
                    one JSON document per line
  --dead-after-ms   heartbeat age after which a worker is not alive, for the workers column and
                    the no_worker alert (default 15000)
  --read-database-url  read from this replica instead (default: SLUICE_READ_DATABASE_URL, else
                    the database itself); the figures then trail by the replica's lag, shown

Exit codes: 0 ok, 1 the database could not be read, 2 bad arguments.`;

const OPTIONS = {
  'database-url': { type: 'string' },
  'read-database-url': { type: 'string' },
  queue: { type: 'string' },
  watch: { type: 'boolean' },
  'interval-ms': { type: 'string' },
  'dead-after-ms': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const fmtCount = (n: number, estimated: boolean) => (estimated && n > 0 ? `~${n}` : String(n));
const fmtRate = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n === 0 ? '0' : n.toFixed(3));

function fmtAge(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.floor(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

function tableRows(stats: QueueStats[]): Record<string, unknown>[] {
  return stats.map((s) => ({
    queue: s.queue,
    state: s.paused ? 'paused' : 'active',
    available: fmtCount(s.available, s.estimated),
    scheduled: fmtCount(s.scheduled, s.estimated),
    running: s.running,
    dead: fmtCount(s.dead, s.estimated),
    'oldest wait': fmtAge(s.oldestWaitSeconds),
    'done/s 1m': fmtRate(s.completedPerS1m),
    'done/s 5m': fmtRate(s.completedPerS5m),
    'err% 5m': s.errorRate5m === null ? '-' : (s.errorRate5m * 100).toFixed(1),
    workers: s.workersAlive,
  }));
}

function render(out: (s: string) => void, stats: QueueStats[], alerts: ActiveAlert[], replica: ReplicaLag | null): void {
  if (replica) out(`read from a replica, lag ${replica.lagSeconds.toFixed(1)} s`);
  printRows(out, tableRows(stats), false);
  out('');
  if (alerts.length === 0) out('alerts: none');
  else {
    out(`alerts (${alerts.length}):`);
    for (const a of alerts) out(`  ! ${a.alert.padEnd(10)} ${a.message}`);
  }
}

export async function statsCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS);
  if (values.help) {
    out(statsHelp);
    return EXIT_OK;
  }
  noPositionals(positionals);
  const queue = name('--queue', str(values, 'queue'));
  const intervalMs = int('--interval-ms', str(values, 'interval-ms'), { min: 100, max: 3_600_000 }) ?? 2_000;
  // worker_status() takes an integer.
  const deadAfterMs = int('--dead-after-ms', str(values, 'dead-after-ms'), { min: 1_000, max: 2_147_483_647 }) ?? 15_000;
  const json = Boolean(values.json);
  const url = databaseUrl(str(values, 'database-url'));
  const readUrl = readDatabaseUrl(str(values, 'read-database-url'));
  return withSluice(url, async (sluice) => {
    const snapshot = async () => {
      const [stats, alerts, replica] = await Promise.all([
        queueStatsAll(sluice.readPool, queue, deadAfterMs),
        alertListActive(sluice.readPool, deadAfterMs),
        readUrl ? replicaLag(sluice.readPool) : null,
      ]);
      return { at: new Date(), replica, queues: stats, alerts: alerts.filter((a) => queue === null || a.queue === queue) };
    };
    if (!values.watch) {
      const snap = await snapshot();
      if (json) out(JSON.stringify(snap, null, 2));
      else render(out, snap.queues, snap.alerts, snap.replica);
      return EXIT_OK;
    }
    const stop = untilSignal();
    let stopped = false;
    void stop.promise.then(() => (stopped = true));
    const tty = Boolean(process.stdout.isTTY);
    try {
      while (!stopped) {
        const snap = await snapshot();
        if (json) out(JSON.stringify(snap));
        else {
          if (tty) process.stdout.write('\x1b[2J\x1b[H');
          out(`sluice stats  ${snap.at.toISOString()}  (every ${intervalMs} ms, Ctrl-C to stop)`);
          render(out, snap.queues, snap.alerts, snap.replica);
          if (!tty) out('');
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([stop.promise, new Promise((r) => (timer = setTimeout(r, intervalMs)))]);
        clearTimeout(timer);
      }
    } finally {
      stop.dispose();
    }
    return EXIT_OK;
  }, readUrl);
}
