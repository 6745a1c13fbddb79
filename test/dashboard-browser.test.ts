// The dashboard in a real browser (Debian's Chromium through playwright-core)
// against a seeded database: every page loads with no script error and no
// CSP violation, sign-in refuses a wrong token, the overview refreshes itself,
// replaying a dead job makes a worker run it, pausing a queue stops claims,
// and forged or cross-site posts are refused. Takes the screenshots in docs/.
// (Code run in the page is passed as strings: the tests compile without DOM types.)
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type DashboardServer } from '../packages/dashboard/src/index.js';
import { Sluice, createWorker, type Worker } from '../packages/sluice/src/index.js';
import { browserSkipReason, launchChromium } from './fixtures/dashboard-browser.js';
import { emailJob, seedDashboard, type Seeded } from './fixtures/dashboard-seed.js';
import { ClaimWatchingPool } from './helpers/claims.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

const TOKEN = 'browser-token-0123456789abcdef';
const skipReason = browserSkipReason();
if (skipReason) console.warn(`SKIP dashboard browser tests: ${skipReason}`);

const shot = (name: string) => fileURLToPath(new URL(`../docs/${name}`, import.meta.url));

describe.skipIf(skipReason !== null)('dashboard in Chromium', () => {
  let db: TestDb;
  let sluice: Sluice;
  let seeded: Seeded;
  let server: DashboardServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let worker: Worker | undefined;
  let workerPool: ClaimWatchingPool | undefined;
  const problems: string[] = [];

  beforeAll(async () => {
    db = await createTestDb();
    sluice = new Sluice({ pool: db.pool });
    seeded = await seedDashboard(sluice, db.pool);
    await sluice.queues.configure('emails', { alertMaxDepth: 10 });
    server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, refreshIntervalMs: 500 });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    // Any script error or CSP violation on any page fails the run.
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 40[13]/.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
    page.on('dialog', (dialog) => void dialog.accept());
  });
  afterAll(async () => {
    await worker?.stop();
    await workerPool?.end();
    await browser?.close();
    await server?.close();
    await sluice?.close();
    await db?.drop();
  });

  const go = (path: string) => page.goto(`${server.url}${path}`);

  it('refuses a wrong token, then signs in with the right one', async () => {
    await go('/jobs');
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name=token]', 'wrong-token-0123456789abcdef');
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('text=Wrong access token');
    expect(new URL(page.url()).pathname).toBe('/login');
    expect((await context.cookies()).some((c) => c.name === 'sluice_dash')).toBe(false);

    await page.fill('input[name=token]', TOKEN);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('h1:has-text("Jobs")');
    expect(new URL(page.url()).pathname).toBe('/jobs');
    const cookie = (await context.cookies()).find((c) => c.name === 'sluice_dash')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  });

  it('loads every page with no script error and no CSP violation; screenshots the overview and a job', async () => {
    const pages: [string, string][] = [
      ['/', 'Overview'],
      ['/?range=day', 'Overview'],
      ['/jobs', 'Jobs'],
      ['/jobs?state=running', 'Jobs'],
      [`/jobs/${seeded.runningId}`, `Job ${seeded.runningId}`],
      [`/jobs/${seeded.completedId}`, `Job ${seeded.completedId}`],
      ['/dlq', 'Dead letters'],
      ['/queues', 'Queues'],
      ['/cron', 'Cron schedules'],
      ['/workers', 'Workers'],
    ];
    for (const [path, heading] of pages) {
      const res = await go(path);
      expect(res?.status(), path).toBe(200);
      await expect(page.locator('h1').first().textContent()).resolves.toContain(heading);
    }
    // The script ran (it marks each refresh), so the CSP let it load.
    await go('/');
    await page.locator('#live[data-refreshed-at]').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: shot('dashboard-overview.png'), fullPage: true });
    await go(`/jobs/${seeded.deadIds[0]}`);
    await page.click('summary:has-text("Stack trace")');
    await page.screenshot({ path: shot('dashboard-job.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('the overview refreshes itself without reloading the page', async () => {
    await go('/');
    await page.evaluate('window.marker = 42');
    const cell = page.locator('tr[data-queue="bulk"] td.n').first();
    const before = Number(await cell.textContent());
    await db.pool.query(`SELECT sluice.enqueue_many('bulk.touch', '[{"n":1},{"n":2},{"n":3}]'::jsonb, queue => 'bulk')`);
    await waitUntil(async () => Number(await cell.textContent()) === before + 3, { timeoutMs: 10_000, what: 'the live overview to show 3 more jobs' });
    expect(await page.evaluate('window.marker')).toBe(42);
  });

  it('replay on a dead job puts it back, and a worker runs it', async () => {
    workerPool = new ClaimWatchingPool(db.url);
    worker = createWorker({ pool: workerPool, handlers: [emailJob.handle(async () => ({ delivered: true }))], pollIntervalMs: 200 });
    await worker.start();
    const id = seeded.deadIds[1]!;
    await go(`/jobs/${id}`);
    await expect(page.locator('h1 .state').textContent()).resolves.toBe('dead');
    await page.click('button:has-text("Replay")');
    await page.waitForSelector('text=The job will run now.');
    await waitUntil(
      async () => {
        await page.reload();
        return (await page.locator('h1 .state').textContent()) === 'completed';
      },
      { timeoutMs: 20_000, intervalMs: 300, what: 'the replayed job to complete' },
    );
    await expect(page.locator('pre.json').first().textContent()).resolves.toContain('delivered');
    expect(problems).toEqual([]);
  });

  it('replays and purges several dead jobs from the dead-letter list', async () => {
    await go('/dlq?queue=emails');
    const [kept, other] = [seeded.deadIds[0]!, seeded.deadIds[2]!];
    expect(await page.locator('tr[data-id]').count()).toBe(2);
    await page.check(`tr[data-id="${other}"] input[name=ids]`);
    await page.click('button[value=replay]');
    await page.waitForSelector('text=Replayed 1 dead job(s)');
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = $1 AND state = 'completed'`, [other])) === 1, {
      what: 'the replayed job to run',
    });
    await page.check('#select-all');
    await page.click('button[value=purge]'); // asks first; the test accepts the dialog
    await page.waitForSelector('text=Purged 1 dead job(s).');
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [kept])).toBe(0);
    expect(problems).toEqual([]);
  });

  it('pausing a queue stops claims; resuming lets them go', async () => {
    await go('/queues');
    await page.click('tr[data-queue="emails"] button:has-text("Pause")');
    await page.waitForSelector('text=Queue paused');
    await expect(page.locator('tr[data-queue="emails"] .badge').textContent()).resolves.toBe('paused');
    const ids = await sluice.enqueueMany(emailJob, [1, 2, 3, 4, 5].map((i) => ({ to: `late${i}@example.com`, account: 'acct_0' })));
    // The worker looks for work after the enqueue and is given none: claims stopped.
    await workerPool!.nextEmptyClaim();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = ANY($1) AND state = 'available'`, [ids])).toBe(5);
    await page.click('tr[data-queue="emails"] button:has-text("Resume")');
    await page.waitForSelector('text=Queue resumed.');
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = ANY($1) AND state = 'completed'`, [ids])) === 5, {
      what: 'the resumed queue to drain',
    });
  });

  it('refuses a form whose CSRF token was tampered with', async () => {
    await go('/queues');
    await page.evaluate(`document.querySelectorAll('input[name=_csrf]').forEach((i) => { i.value = 'forged'; })`);
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('tr[data-queue="bulk"] button:has-text("Pause")')]);
    expect(response.status()).toBe(403);
    await page.waitForSelector('text=missing or wrong CSRF token');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bulk' AND paused`)).toBe(0);
  });

  it('refuses a form post made by a page of another origin in the same browser', async () => {
    // A page of another origin that posts to the dashboard as soon as it loads. It is on
    // 127.0.0.1 too (another port): the same site, so the browser even sends the session
    // cookie, and only the origin check and the CSRF token stand in the way.
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id="f" method="post" action="${server.url}/queues/bulk/pause"><input name="_csrf" value="guess"></form>
<script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const port = (evil.address() as AddressInfo).port;
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/queues/bulk/pause')),
        page.goto(`http://127.0.0.1:${port}/`),
      ]);
      expect(response.status()).toBe(403);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bulk' AND paused`)).toBe(0);
    } finally {
      evil.close();
    }
  });
});
