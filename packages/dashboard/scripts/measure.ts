// Seeds a database with about a million jobs and measures how long each
// dashboard page takes to load: an HTTP GET on loopback, from the request to
// the last byte of the page, signed in, after two warm-up loads.
//
//   npx tsx packages/dashboard/scripts/measure.ts [--database-url URL] [--jobs N] [--runs N] [--keep]
//
// It creates a database sluice_dash_measure_<random> on the server of URL
// (default DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres),
// migrates it, seeds it through sluice's own SQL functions, and drops it at
// the end unless --keep. The job mix: 60% available in three queues, 5%
// scheduled, 30% completed (history), 5% dead, 100 running; plus a day of
// per-minute metrics for the charts.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { Sluice, migrate } from 'sluice';
import { startDashboard } from '../src/index.js';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    jobs: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
});
const adminUrl = values['database-url'] ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const totalJobs = Number(values.jobs);
const runs = Number(values.runs);
if (!Number.isInteger(totalJobs) || totalJobs < 10_000) throw new Error('--jobs: an integer of at least 10000');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: a positive integer');

const CHUNK = 50_000;
const TOKEN = randomBytes(24).toString('base64url');

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

const log = (s: string) => console.log(s);
const since = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

/** Enqueues n jobs of one kind in chunks through sluice.enqueue_many. */
async function enqueue(db: pg.Pool, name: string, queue: string, n: number, delayed: boolean): Promise<void> {
  for (let from = 0; from < n; from += CHUNK) {
    const to = Math.min(n, from + CHUNK) - 1;
    await db.query(
      `SELECT count(*) FROM sluice.enqueue_many($1,
         (SELECT jsonb_agg(jsonb_build_object('to', 'user' || g || '@example.com', 'n', g)) FROM generate_series($3::int, $4::int) g),
         queue => $2, run_at => CASE WHEN $5 THEN now() + interval '1 day' END,
         tags => ARRAY['batch-' || ($3::int / ${CHUNK}), 'seed'])`,
      [name, queue, from, to, delayed],
    );
  }
}

async function seed(db: pg.Pool): Promise<void> {
  const available = Math.round(totalJobs * 0.6);
  const history = Math.round(totalJobs * 0.3);
  const dead = Math.round(totalJobs * 0.05);
  const scheduled = totalJobs - available - history - dead;
  let t = performance.now();
  // Completed and dead jobs start as live ones and are moved by sluice's functions.
  await enqueue(db, 'email.send', 'emails', Math.round(available * 0.5) + history + dead, false);
  await enqueue(db, 'report.build', 'reports', Math.round(available * 0.3), false);
  await enqueue(db, 'bulk.touch', 'bulk', available - Math.round(available * 0.5) - Math.round(available * 0.3), false);
  await enqueue(db, 'report.build', 'reports', scheduled, true);
  log(`  enqueued ${totalJobs.toLocaleString('en-US')} jobs in ${since(t)}`);

  t = performance.now();
  for (let moved = 0; moved < history; moved += CHUNK) {
    await db.query(
      `SELECT count(*) FROM sluice.move_to_history(
         ARRAY(SELECT id FROM sluice.jobs WHERE queue = 'emails' AND state = 'available' ORDER BY id LIMIT $1), 'completed')`,
      [Math.min(CHUNK, history - moved)],
    );
  }
  // move_to_dead appends to arrays row by row: small chunks keep that linear.
  const DEAD_CHUNK = 5_000;
  for (let moved = 0; moved < dead; moved += DEAD_CHUNK) {
    const n = Math.min(DEAD_CHUNK, dead - moved);
    await db.query(
      `SELECT count(*) FROM sluice.move_to_dead(
         ARRAY(SELECT id FROM sluice.jobs WHERE queue = 'emails' AND state = 'available' ORDER BY id LIMIT $1),
         array_fill(jsonb_build_object('attempt', 25, 'at', now(), 'kind', 'error', 'name', 'SmtpError',
           'message', '550 mailbox unavailable', 'stack', 'SmtpError: 550 mailbox unavailable\n    at deliver (mailer.ts:42:11)'), ARRAY[$1::int]),
         array_fill('exhausted'::text, ARRAY[$1::int]))`,
      [n],
    );
  }
  log(`  moved ${history.toLocaleString('en-US')} to history and ${dead.toLocaleString('en-US')} to the dead-letter queue in ${since(t)}`);

  await db.query(`INSERT INTO sluice.workers (id, service, host, pid, queues, concurrency, version)
                  VALUES ('measure-worker', 'bulk', 'measure-host', 1, '{bulk}', 100, '0.1.0')`);
  await db.query(`SELECT count(*) FROM sluice.claim(ARRAY['bulk'], ARRAY[100], 'measure-worker', 3600000)`);
  await db.query(`INSERT INTO sluice.cron_schedules (name, cron, job_name, next_run_at) VALUES ('nightly', '0 3 * * *', 'report.build', now() + interval '3 hours')`);
  await db.query(`
    INSERT INTO sluice.metrics_minutely (queue, minute, shard, enqueued, completed, failed, dead)
    SELECT q, date_trunc('minute', now()) - g * interval '1 minute', 63, 400 + g % 97, 380 + g % 89, g % 13, g % 50 / 49
    FROM generate_series(1, 1440) g, unnest(ARRAY['emails', 'reports', 'bulk']) q
    ON CONFLICT DO NOTHING`);
  t = performance.now();
  await db.query('VACUUM ANALYZE sluice.jobs');
  await db.query('VACUUM ANALYZE sluice.job_history');
  await db.query('VACUUM ANALYZE sluice.dead_jobs');
  await db.query('ANALYZE');
  log(`  vacuumed and analyzed in ${since(t)}`);
}

async function signIn(url: string): Promise<string> {
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: TOKEN, next: '/' }),
  });
  const cookie = res.headers.getSetCookie()[0]?.split(';')[0];
  if (res.status !== 303 || !cookie) throw new Error(`sign-in failed: HTTP ${res.status}`);
  return cookie;
}

async function timeGet(url: string, cookie: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(url, { headers: { cookie } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return performance.now() - t;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function main(): Promise<void> {
  const name = `sluice_dash_measure_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const { rows: version } = await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
  log(`PostgreSQL ${version[0]!.v}; database ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  const db = new pg.Pool({ connectionString: withDatabase(adminUrl, name), max: 4 });
  // The final DROP ... WITH (FORCE) ends any connection still open; that is expected.
  db.on('error', () => {});
  let sluice: Sluice | undefined;
  let server: Awaited<ReturnType<typeof startDashboard>> | undefined;
  try {
    await migrate(db);
    log(`seeding about ${totalJobs.toLocaleString('en-US')} jobs`);
    await seed(db);
    const { rows: counts } = await db.query<{ live: string; history: string; dead: string }>(
      `SELECT (SELECT count(*) FROM sluice.jobs) AS live, (SELECT count(*) FROM sluice.job_history) AS history,
              (SELECT count(*) FROM sluice.dead_jobs) AS dead`,
    );
    const c = counts[0]!;
    log(`rows: sluice.jobs ${Number(c.live).toLocaleString('en-US')}, job_history ${Number(c.history).toLocaleString('en-US')}, dead_jobs ${Number(c.dead).toLocaleString('en-US')}`);

    const ids = await db.query<{ dead: string; done: string; live: string; mid: string }>(
      `SELECT (SELECT max(id) FROM sluice.dead_jobs) AS dead, (SELECT max(id) FROM sluice.job_history) AS done,
              (SELECT max(id) FROM sluice.jobs WHERE state = 'available') AS live, (SELECT max(id) / 2 FROM sluice.jobs) AS mid`,
    );
    const id = ids.rows[0]!;
    sluice = new Sluice({ pool: db, logger: pino({ level: 'silent' }) });
    server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, logger: pino({ level: 'silent' }) });
    const cookie = await signIn(server.url);
    const pages: [string, string][] = [
      ['overview', '/'],
      ['overview, charts over a day', '/?range=day'],
      ['overview live refresh', '/live'],
      ['jobs: newest', '/jobs'],
      ['jobs: a page in the middle', `/jobs?before=${id.mid}`],
      ['jobs: state=running', '/jobs?state=running'],
      ['jobs: state=scheduled', '/jobs?state=scheduled'],
      ['jobs: state=dead', '/jobs?state=dead'],
      ['jobs: state=completed', '/jobs?state=completed'],
      ['jobs: queue=reports', '/jobs?queue=reports'],
      ['jobs: name=bulk.touch', '/jobs?name=bulk.touch'],
      ['jobs: tag text "batch-3"', '/jobs?q=batch-3'],
      ['jobs: name matching nothing', '/jobs?name=no.such.job'],
      ['jobs: tag text matching nothing', '/jobs?q=no-such-tag'],
      ['jobs: by id', `/jobs?q=${id.live}`],
      ['job detail: dead', `/jobs/${id.dead}`],
      ['job detail: completed', `/jobs/${id.done}`],
      ['job detail: available', `/jobs/${id.live}`],
      ['dead letters', '/dlq'],
      ['dead letters: queue=emails', '/dlq?queue=emails'],
      ['queues', '/queues'],
      ['cron', '/cron'],
      ['workers', '/workers'],
    ];
    log(`\npage load times over ${runs} loads each (ms; HTTP GET on loopback, to the last byte; after 2 warm-up loads)`);
    log(`${'page'.padEnd(34)} ${'median'.padStart(8)} ${'p95'.padStart(8)} ${'max'.padStart(8)}`);
    let worst = 0;
    for (const [label, page] of pages) {
      const url = `${server.url}${page}`;
      await timeGet(url, cookie);
      await timeGet(url, cookie);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push(await timeGet(url, cookie));
      times.sort((a, b) => a - b);
      worst = Math.max(worst, pct(times, 95));
      log(`${label.padEnd(34)} ${pct(times, 50).toFixed(1).padStart(8)} ${pct(times, 95).toFixed(1).padStart(8)} ${times.at(-1)!.toFixed(1).padStart(8)}`);
    }
    log(`\nslowest p95: ${worst.toFixed(1)} ms`);
  } finally {
    await server?.close();
    await sluice?.close();
    await db.end();
    if (values.keep) {
      log(`kept database ${name}`);
    } else {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    await admin.end();
  }
}

await main();
