// `pnpm demo`: sluice end to end on a real PostgreSQL, in four short sections.
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { pino } from 'pino';
import { Sluice, createWorker } from '../index.js';
import type { DemoContext } from './context.js';
import { openDemoDatabase } from './database.js';
import { showInspection } from './inspection.js';
import { chargeCard, createWorld, deliverWebhook, demoHandlers, resizeImage, sendEmail } from './jobs.js';
import { heading, note } from './output.js';
import { showRetries } from './retries.js';
import { showThroughput } from './throughput.js';
import { showTransactions } from './transactions.js';

const WORKER_CONCURRENCY = 50;

// Retries in section 3 are expected and would otherwise log a warning each;
// SLUICE_LOG_LEVEL=warn brings sluice's own logs back.
const logger = pino({ level: process.env.SLUICE_LOG_LEVEL ?? 'silent' });

// Undone in reverse order: worker, pool, then the database or server under them.
const cleanups: { what: string; run: () => Promise<void> }[] = [];

async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!;
    try {
      await step.run();
      note(`✓ ${step.what}`);
    } catch (err) {
      console.error(`  ✗ ${step.what} failed:`, err);
      process.exitCode = 1;
    }
  }
}

async function run(): Promise<void> {
  console.log('sluice demo: a PostgreSQL job queue, step by step');
  const database = await openDemoDatabase();
  cleanups.push({ what: process.env.DATABASE_URL ? 'demo database dropped' : 'embedded PostgreSQL stopped', run: () => database.close() });

  const pool = new pg.Pool({ connectionString: database.url, max: 5 });
  pool.on('error', (err) => logger.warn({ err }, 'idle demo connection failed'));
  cleanups.push({ what: 'application pool closed', run: () => pool.end() });
  const { rows } = await pool.query<{ v: string }>(`select current_setting('server_version') as v`);
  note(`PostgreSQL ${rows[0]!.v.split(' ')[0]}: ${database.description}`);

  const sluice = new Sluice({ pool, logger, jobs: [sendEmail, resizeImage, deliverWebhook, chargeCard] });
  await sluice.migrate();
  note('sluice.migrate(): schema "sluice" is in place (tables, functions, views)');

  const world = createWorld();
  const worker = createWorker({
    connectionString: database.url,
    handlers: demoHandlers(world),
    concurrency: WORKER_CONCURRENCY,
    service: 'demo',
    logger,
  });
  cleanups.push({ what: 'worker stopped', run: () => worker.stop() });

  const ctx: DemoContext = { pool, db: drizzle(pool), sluice, worker, world };
  await showTransactions(ctx);
  const rate = await showThroughput(ctx);
  await showRetries(ctx);
  await showInspection(ctx);

  heading('Done');
  note(`Throughput this run: ${rate.toLocaleString('en-US')} jobs/s. Shutting down:`);
}

const startedAt = performance.now();
process.once('SIGINT', () => {
  console.log('\n  interrupted: cleaning up');
  void cleanUp().finally(() => process.exit(130));
});
try {
  await run();
} catch (err) {
  console.error('\ndemo failed:', err);
  process.exitCode = 1;
} finally {
  await cleanUp();
  note(`Demo finished in ${((performance.now() - startedAt) / 1000).toFixed(1)} s.`);
}
