import { DatabaseMetrics } from '../../prometheus/database-metrics.js';
import { startMetricsServer } from '../../prometheus/server.js';
import { withSluice } from '../context.js';
import { EXIT_OK, UsageError, databaseUrl, parse, readDatabaseUrl } from '../usage.js';
import { int, noPositionals, str, untilSignal } from './args.js';

export const metricsHelp = `sluice metrics [--json | --port N [--host H]] [--database-url URL] [--read-database-url URL]

Prints the database-wide metrics once in the Prometheus text format: sluice_jobs{queue,name,state},
sluice_queue_oldest_waiting_seconds, sluice_queue_jobs_per_second{event,window},
sluice_queue_error_rate, sluice_queue_wait_seconds / sluice_queue_run_seconds{stat},
sluice_queue_workers_alive, sluice_queue_paused, sluice_queue_alert{alert}.
--json prints them once as JSON (prom-client's form: one object per metric, with its values).
With --port, serves them at GET /metrics until Ctrl-C (host default: all interfaces).
--read-database-url (default: SLUICE_READ_DATABASE_URL) reads them from a replica.

Exit codes: 0 ok, 1 the database could not be read or the port is taken, 2 bad arguments.`;

export async function metricsCommand(args: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parse(args, {
    'database-url': { type: 'string' },
    'read-database-url': { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(metricsHelp);
    return EXIT_OK;
  }
  noPositionals(positionals);
  const port = int('--port', str(values, 'port'), { min: 0, max: 65_535 });
  const host = str(values, 'host');
  if (values.json && port !== undefined) throw new UsageError('--json', 'prints the metrics once; --port serves them as Prometheus text');
  const url = databaseUrl(str(values, 'database-url'));
  return withSluice(url, async (sluice) => {
    const metrics = new DatabaseMetrics(sluice.readPool);
    if (values.json) {
      await metrics.refresh();
      out(JSON.stringify(await metrics.registry.getMetricsAsJSON(), null, 2));
      return EXIT_OK;
    }
    if (port === undefined) {
      out((await metrics.metrics()).trimEnd());
      return EXIT_OK;
    }
    const stop = untilSignal();
    try {
      const server = await startMetricsServer({ port, host, render: () => metrics.metrics(), contentType: metrics.registry.contentType, logger: sluice.logger });
      out(`serving metrics at http://${host ?? '0.0.0.0'}:${server.port}/metrics (Ctrl-C to stop)`);
      await stop.promise;
      await server.close();
    } finally {
      stop.dispose();
    }
    return EXIT_OK;
  }, readDatabaseUrl(str(values, 'read-database-url')));
}
