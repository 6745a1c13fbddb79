// The example worker that docker-compose.yml runs (plain node, the installed
// package). As docs/operations.md describes for PgBouncer in transaction mode:
// jobs go through the pooler (DATABASE_URL) with poolMode 'transaction', and
// LISTEN uses a direct connection (SLUICE_LISTEN_URL). A schedule
// gives the dashboard something to show; Prometheus scrapes :9464/metrics.
import { createWorker, defineJob, schedule, stopOnSignals } from 'sluice';
import { z } from 'zod';

const METRICS_PORT_DEFAULT = 9464;

const tick = defineJob({ name: 'example.tick', queue: 'example', schema: z.object({ note: z.string() }) });

const worker = createWorker({
  connectionString: process.env.DATABASE_URL,
  poolMode: 'transaction',
  listenConnectionString: process.env.SLUICE_LISTEN_URL,
  service: 'example',
  handlers: [
    tick.handle(async ({ note }, { job, logger }) => {
      logger.info({ jobId: job.id, note }, 'tick');
    }),
  ],
  schedules: [schedule({ name: 'example.tick', cron: '*/10 * * * * *', job: tick, payload: { note: 'every 10 seconds' } })],
  metricsPort: Number(process.env.SLUICE_METRICS_PORT ?? METRICS_PORT_DEFAULT),
});

await worker.start();
stopOnSignals(worker);
console.log('example worker started');
