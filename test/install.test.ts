// The packed tarballs, installed with npm into a fresh app outside the
// workspace and run by plain node (no tsx, no TypeScript loader), on this
// machine's Node and on Node 24: migrate, roles, a worker draining jobs that
// a second process enqueued in its transaction, the dashboard with a sign-in,
// the Prometheus endpoint, and a strict type check against the installed
// declarations.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardClient } from './fixtures/dashboard-http.js';
import { spawnLines, type Child } from './helpers/child.js';
import { count, createEmptyDb, waitUntil, type TestDb } from './helpers/db.js';
import { installApp, node24, packPackages, run } from './helpers/install.js';
import { freePort } from './helpers/port.js';

const JOBS = 25;
const TOKEN = 'install-test-token-0123456789abcdef';
// A user's own docs/roles.sql: `sluice roles` must not print it.
const DECOY = '-- the app\'s own file, not sluice\'s roles script';

let app: string;
let packDir: string;
const cleanups: (() => Promise<void> | void)[] = [];
const children: Child[] = [];

beforeAll(async () => {
  packDir = mkdtempSync(join(tmpdir(), 'sluice-pack-'));
  cleanups.push(() => rmSync(packDir, { recursive: true, force: true }));
  const tarballs = await packPackages(packDir);
  app = await installApp(tarballs);
  cleanups.push(() => rmSync(app, { recursive: true, force: true }));
  mkdirSync(join(app, 'docs'));
  writeFileSync(join(app, 'docs', 'roles.sql'), DECOY);
}, 600_000);

afterAll(async () => {
  for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
  for (const fn of cleanups.reverse()) await fn();
});

function packageFiles(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix))
    .map((f) => join(dir, f));
}

describe('the packed packages', () => {
  it('hold compiled JS, declarations and their runtime files; the dashboard names sluice by version; no drizzle-orm or tsx needed', () => {
    const sluice = join(app, 'node_modules', 'sluice');
    const dashboard = join(app, 'node_modules', '@sluice', 'dashboard');
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/schema.d.ts', 'dist/cli/bin.js', 'dist/drizzle/meta/_journal.json', 'dist/drizzle/functions/jobs/claim.sql', 'sql/roles.sql']) {
      expect(existsSync(join(sluice, f)), f).toBe(true);
    }
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'assets/dashboard.js', 'assets/dashboard.css', 'assets/favicon.svg']) {
      expect(existsSync(join(dashboard, f)), f).toBe(true);
    }
    expect(packageFiles(sluice, '.ts').filter((f) => !f.endsWith('.d.ts'))).toEqual([]);
    expect(packageFiles(dashboard, '.ts').filter((f) => !f.endsWith('.d.ts'))).toEqual([]);

    const sluiceManifest = JSON.parse(readFileSync(join(sluice, 'package.json'), 'utf8'));
    expect(Object.keys(sluiceManifest.dependencies)).not.toContain('tsx');
    expect(Object.keys(sluiceManifest.peerDependencies).sort()).toEqual(['drizzle-orm', 'pg', 'tsx', 'zod']);
    expect(sluiceManifest.peerDependenciesMeta).toEqual({ 'drizzle-orm': { optional: true }, tsx: { optional: true } });
    const dashboardManifest = JSON.parse(readFileSync(join(dashboard, 'package.json'), 'utf8'));
    expect(dashboardManifest.peerDependencies.sluice).toBe(`^${sluiceManifest.version}`);
    expect(JSON.stringify(dashboardManifest)).not.toContain('workspace:');
    expect(Object.keys(dashboardManifest.dependencies).sort()).toEqual(['@hono/node-server', 'hono', 'pino']);
    // The app installed neither, and everything below runs.
    expect(existsSync(join(app, 'node_modules', 'drizzle-orm'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
  });

  it('ship source maps that carry the sources they name', () => {
    const maps = [...packageFiles(join(app, 'node_modules', 'sluice', 'dist'), '.js.map'), ...packageFiles(join(app, 'node_modules', '@sluice', 'dashboard', 'dist'), '.js.map')];
    expect(maps.length).toBeGreaterThan(50);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(map.sourcesContent?.length, file).toBe(map.sources.length);
      for (const content of map.sourcesContent!) expect(typeof content === 'string' && content.length > 0, file).toBe(true);
    }
  });
});

const runtimes: { name: string; node: () => Promise<string> }[] = [
  { name: `this machine's node (${process.version})`, node: async () => process.execPath },
  { name: 'node 24 (npm package node@24)', node: node24 },
];

describe.each(runtimes)('installed, on $name', ({ node }) => {
  let nodeBin: string;
  let db: TestDb;
  let env: NodeJS.ProcessEnv;
  const sluice = (args: string[]) => run(join(app, 'node_modules', '.bin', 'sluice'), args, { cwd: app, env });
  const start = (command: string, args: string[]) => {
    const child = spawnLines(command, args, { cwd: app, env });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    nodeBin = await node();
    db = await createEmptyDb();
    cleanups.push(() => db.drop());
    // The bin's `#!/usr/bin/env node` finds this runtime first.
    env = { ...process.env, PATH: `${dirname(nodeBin)}:${process.env.PATH}`, DATABASE_URL: db.url, SLUICE_LOG_LEVEL: 'warn' };
    delete env.NODE_OPTIONS;
  }, 300_000);

  it('runs the expected node', async () => {
    const r = await run('node', ['--version'], { env });
    expect(r.stdout.trim()).toBe((await run(nodeBin, ['--version'])).stdout.trim());
  });

  it('`sluice migrate` on a fresh database names each migration it applied, then has nothing to apply', async () => {
    const journal = JSON.parse(readFileSync(join(app, 'node_modules/sluice/dist/drizzle/meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] };
    const first = await sluice(['migrate']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const lines = first.stdout.split('\n');
    expect(lines.filter((l) => /^applied \d{4}_/.test(l))).toEqual(journal.entries.map((e) => `applied ${e.tag}`));
    expect(lines).toContain('applied functions/jobs/claim.sql');
    const again = await sluice(['migrate']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to apply');
    expect(again.stdout).not.toContain('applied 0');
  });

  it('`sluice roles` prints the packaged role script, not a file from the working directory', async () => {
    const r = await sluice(['roles']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(readFileSync(join(app, 'node_modules/sluice/sql/roles.sql'), 'utf8').trim());
    expect(r.stdout).toContain('sluice_runtime');
    expect(r.stdout).not.toContain(DECOY);
  });

  it('a `sluice worker` process drains the jobs a second process enqueued in its pg transaction', async () => {
    await db.pool.query('CREATE TABLE install_orders (id serial PRIMARY KEY, shipped_on text)');
    const worker = start('node_modules/.bin/sluice', ['worker', './handlers.mjs', '--concurrency', '5']);
    const enqueue = await run(nodeBin, ['enqueue.mjs', String(JOBS)], { cwd: app, env });
    expect(enqueue.stderr).toBe('');
    expect(enqueue.code).toBe(0);
    const version = (await run(nodeBin, ['--version'])).stdout.trim();
    expect(enqueue.stdout).toContain(`enqueued ${JOBS} on ${version}`);

    await waitUntil(() => count(db.pool, 'SELECT count(*) n FROM install_orders WHERE shipped_on IS NOT NULL').then((n) => n === JOBS), {
      timeoutMs: 60_000,
      what: 'every order shipped',
    });
    // The rolled-back order (and its job) never existed; every shipment ran on this runtime.
    expect(await count(db.pool, 'SELECT count(*) n FROM install_orders')).toBe(JOBS);
    expect(await count(db.pool, 'SELECT count(*) n FROM install_orders WHERE shipped_on = $1', [version])).toBe(JOBS);
    await waitUntil(() => count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE name = 'install.ship' AND state = 'completed'`).then((n) => n === JOBS), {
      what: 'completions recorded',
    });
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs')).toBe(0);

    worker.process.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(worker.stderr()).not.toMatch(/error/i);
  }, 120_000);

  it('`sluice worker` on a TypeScript module without tsx installed says to install it (exit 2)', async () => {
    const r = await sluice(['worker', './typed.ts']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('npm install tsx');
    expect(r.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });

  it('`sluice metrics --port` serves the Prometheus endpoint', async () => {
    const metrics = start('node_modules/.bin/sluice', ['metrics', '--port', '0', '--host', '127.0.0.1']);
    const [, url] = await metrics.waitForLine(/serving metrics at (http:\/\/\S+\/metrics)/, 60_000);
    const res = await fetch(url!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const completedPerSecond = (await res.text()).match(/^sluice_queue_jobs_per_second\{queue="install",event="completed",window="15m"\} (\S+)$/m);
    expect(Number(completedPerSecond?.[1])).toBeGreaterThan(0);
    metrics.process.kill('SIGTERM');
    expect(await metrics.exited).toBe(0);
  });

  it("docker-compose.yml's example worker runs a schedule's job (`sluice cron run-now`) and serves its metrics", async () => {
    const metricsPort = await freePort();
    const worker = spawnLines(nodeBin, ['compose-worker.mjs'], {
      cwd: app,
      env: { ...env, SLUICE_LISTEN_URL: db.url, SLUICE_METRICS_PORT: String(metricsPort) },
    });
    children.push(worker);
    await worker.waitForLine(/^example worker started$/, 60_000);
    const runNow = await sluice(['cron', 'run-now', 'example.tick']);
    expect(runNow.code).toBe(0);
    const [, id] = runNow.stdout.match(/enqueued job (\d+)/) ?? [];
    await waitUntil(() => count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = $1 AND state = 'completed'`, [Number(id)]).then((n) => n === 1), {
      what: 'the example job completed',
    });
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/^sluice_worker_jobs_total\{queue="example",name="example\.tick",result="completed"\} [1-9]/m);
    worker.process.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('`sluice dashboard --token` serves the dashboard: /login, then a cookie, then /jobs', async () => {
    const dashboard = start('node_modules/.bin/sluice', ['dashboard', '--token', TOKEN, '--port', '0']);
    const [, origin] = await dashboard.waitForLine(/dashboard on (http:\/\/[^/\s]+)\//, 60_000);
    const client = new DashboardClient(origin!);

    const signedOut = await client.get('/jobs');
    expect(signedOut.status).toBe(303);
    expect(signedOut.headers.get('location')).toMatch(/^\/login/);
    const login = await client.get('/login');
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('name="token"');
    const signIn = await client.post('/login', { token: TOKEN, next: '/jobs' });
    expect(signIn.status).toBe(303);
    expect(client.cookies.size).toBeGreaterThan(0);
    const jobs = await client.get('/jobs');
    expect(jobs.status).toBe(200);
    expect(await jobs.text()).toContain('install.ship');
    const css = await client.get('/assets/dashboard.css');
    expect(css.status).toBe(200);

    dashboard.process.kill('SIGTERM');
    expect(await dashboard.exited).toBe(0);
  });

  // typed.ts holds @ts-expect-error lines (a wrong payload, an unknown field):
  // were the declarations `any`, tsc would fail on the unused directives.
  it('`tsc --noEmit` (strict) type-checks an app against the installed declarations', async () => {
    const r = await run(nodeBin, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: app, env });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  }, 240_000);
});

// Last: everything above ran without drizzle-orm installed.
describe('with drizzle-orm installed (an optional peer)', () => {
  it('sluice/schema exports the typed tables', async () => {
    const add = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', 'drizzle-orm@^0.45.0'], { cwd: app });
    expect(add.code, add.stderr).toBe(0);
    const r = await run(process.execPath, ['--input-type=module', '-e', "const s = await import('sluice/schema'); const { getTableName } = await import('drizzle-orm'); console.log(getTableName(s.jobs), getTableName(s.jobHistory))"], { cwd: app });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('jobs job_history');
  }, 180_000);
});
