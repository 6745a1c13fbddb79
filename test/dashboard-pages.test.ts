// What the dashboard shows over real HTTP, without a browser: every page,
// payloads and stack traces hidden from read-only viewers, the job list's
// filters and keyset pages, and every page under the read-only database role.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDashboard, type DashboardServer } from '../packages/dashboard/src/index.js';
import { Sluice } from '../packages/sluice/src/index.js';
import { PAYLOAD_SECRET, SEED_WORKER_ID, STACK_MARKER, bulkJob, type Seeded } from './fixtures/dashboard-seed.js';
import { PAGES, TOKEN, signedIn, useSeededDashboard } from './fixtures/dashboard-suite.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

const suite = useSeededDashboard();
const logs = suite.logs;
let db: TestDb;
let sluice: Sluice;
let seeded: Seeded;
let rw: DashboardServer;
let ro: DashboardServer;

beforeAll(async () => {
  ({ db, sluice, seeded, rw } = suite);
  ro = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, logger: logs.logger, readOnly: true });
});
afterAll(async () => {
  await ro?.close();
});

describe('what a viewer sees', () => {
  it('read-write: every page renders, the job page shows payload, stack trace and actions', async () => {
    const client = await signedIn(rw);
    for (const path of PAGES) expect((await client.get(path)).status, path).toBe(200);
    const dead = await (await client.get(`/jobs/${seeded.deadIds[2]}`)).text();
    expect(dead).toContain(PAYLOAD_SECRET);
    expect(dead).toContain(STACK_MARKER);
    expect(dead).toContain('550 mailbox unavailable');
    expect(dead).toContain(`/jobs/${seeded.deadIds[2]}/retry`);
    const running = await (await client.get(`/jobs/${seeded.runningId}`)).text();
    expect(running).toContain('<progress max="100" value="40">');
    expect(running).toContain('rendering the template');
    const done = await (await client.get(`/jobs/${seeded.completedId}`)).text();
    expect(done).toContain('messageId');
    expect((await client.get('/jobs/999999999')).status).toBe(404);
    expect((await client.get('/jobs/abc')).status).toBe(400);
  });

  it('read-only: no action is shown or accepted, and no payload, result or stack trace leaves the server', async () => {
    const client = await signedIn(ro);
    for (const path of [...PAGES, ...seeded.deadIds.slice(1).map((id) => `/jobs/${id}`), `/jobs/${seeded.completedId}`, `/jobs/${seeded.runningId}`]) {
      const res = await client.get(path);
      expect(res.status, path).toBe(200);
      const html = await res.text();
      expect(html, path).not.toContain(PAYLOAD_SECRET);
      expect(html, path).not.toContain(STACK_MARKER);
      // The only form that posts is sign-out.
      const posts = [...html.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) => m[1]);
      expect(posts.filter((a) => a !== '/logout'), path).toEqual([]);
    }
    const page = await (await client.get(`/jobs/${seeded.deadIds[1]}`)).text();
    expect(page).toContain('550 mailbox unavailable');
    expect(page).toContain('read-only');
    const csrf = await client.csrf('/');
    for (const path of ['/queues/emails/pause', `/jobs/${seeded.deadIds[1]}/retry`, '/dlq/action', '/cron/nightly-report/run']) {
      const res = await client.post(path, { _csrf: csrf, do: 'replay', ids: String(seeded.deadIds[1]) });
      expect(res.status, path).toBe(403);
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1`, [seeded.deadIds[1]])).toBe(1);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE paused`)).toBe(0);
  });

  it('read-only with payloads allowed by configuration shows them', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, readOnly: true, showPayloads: true, logger: logs.logger });
    try {
      const client = await signedIn(server);
      const html = await (await client.get(`/jobs/${seeded.deadIds[1]}`)).text();
      expect(html).toContain(PAYLOAD_SECRET);
      expect(html).not.toContain(STACK_MARKER);
    } finally {
      await server.close();
    }
  });

  it('the overview lists every queue with its depth, the alert, and the charts', async () => {
    await sluice.queues.configure('emails', { alertMaxDepth: 5 });
    const client = await signedIn(rw);
    const html = await (await client.get('/')).text();
    for (const q of ['emails', 'reports', 'bulk']) expect(html).toContain(`data-queue="${q}"`);
    expect(html).toContain('queue emails: ');
    expect(html).toContain('<svg class="chart"');
    expect(html).toMatch(/<rect class="bar fail"/);
    expect(await (await client.get('/?range=day')).text()).toContain('last day');
    const live = await client.get('/live', { 'x-sluice-live': '1' });
    expect(live.status).toBe(200);
    expect(await live.text()).not.toContain('<html');
    await sluice.queues.configure('emails', { alertMaxDepth: null });
  });
});

describe('workers alive', () => {
  it('the overview counts a queue\'s workers with workerDeadAfterMs, like its workers card and page', async () => {
    await db.pool.query(`INSERT INTO sluice.queues (name) VALUES ('beat')`);
    await db.pool.query(`INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at)
                         VALUES ('w-dash-beat', 'h', 1, '{beat}', 1, 't', now() - interval '20 seconds')`);
    const patient = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, workerDeadAfterMs: 60_000, logger: logs.logger });
    try {
      // The Workers cell is the last of the queue's row.
      const workersOf = async (server: DashboardServer) => {
        const html = await (await (await signedIn(server)).get('/')).text();
        const row = /<tr data-queue="beat">[\s\S]*?<\/tr>/.exec(html)![0];
        return [...row.matchAll(/<td class="n">([^<]*)<\/td>/g)].at(-1)![1];
      };
      expect(await workersOf(rw)).toBe('0');
      expect(await workersOf(patient)).toBe('1');
    } finally {
      await patient.close();
      await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'w-dash-beat'`);
      await db.pool.query(`DELETE FROM sluice.queues WHERE name = 'beat'`);
    }
  });
});

describe('jobs list', () => {
  const idsOn = (html: string) => [...html.matchAll(/<tr data-id="(\d+)">/g)].map((m) => Number(m[1]));
  const nextOn = (html: string) => /<a rel="next" href="([^"]+)"/.exec(html)?.[1]?.replaceAll('&amp;', '&') ?? null;

  it('pages by keyset through every job, newest first, without repeats', async () => {
    const client = await signedIn(rw);
    const seen: number[] = [];
    let path: string | null = '/jobs';
    while (path) {
      const html = await (await client.get(path)).text();
      seen.push(...idsOn(html));
      path = nextOn(html);
    }
    const total = await count(
      db.pool,
      `SELECT (SELECT count(*) FROM sluice.jobs) + (SELECT count(*) FROM sluice.job_history) + (SELECT count(*) FROM sluice.dead_jobs) AS n`,
    );
    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
  });

  it('filters by state, queue, name, tag text and id', async () => {
    const client = await signedIn(rw);
    const all = async (path: string) => {
      const ids: number[] = [];
      let p: string | null = path;
      while (p) {
        const html = await (await client.get(p)).text();
        ids.push(...idsOn(html));
        p = nextOn(html);
      }
      return ids;
    };
    expect(await all('/jobs?state=running')).toEqual([seeded.runningId]);
    expect(await all(`/jobs?worker=${SEED_WORKER_ID}`)).toEqual([seeded.runningId]);
    expect((await client.get('/jobs?worker=two%20words')).status).toBe(400);
    expect((await all('/jobs?state=scheduled&queue=reports')).length).toBe(10);
    expect((await all('/jobs?name=bulk.touch')).length).toBe(5);
    expect((await all('/jobs?q=BATCH-7')).length).toBe(5);
    expect(await all(`/jobs?q=%23${seeded.retryId}`)).toEqual([seeded.retryId]);
    expect((await all('/jobs?state=completed')).length).toBe(4);
    expect((await client.get('/jobs?state=bogus')).status).toBe(400);
    expect((await client.get('/jobs?queue=bad%20name')).status).toBe(400);
  });

  it('a filter no index serves searches a bounded window of ids and says where it stopped', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, searchWindow: 1_000, logger: logs.logger });
    try {
      const client = await signedIn(server);
      // Far ids make the window matter: 5000 ids above the seeded jobs, none in queue "bulk".
      await db.pool.query(`SELECT setval(pg_get_serial_sequence('sluice.jobs', 'id'), (SELECT max(id) FROM sluice.jobs) + 5000)`);
      await db.pool.query(`SELECT sluice.enqueue('email.send', '{"to":"far@example.com","account":"acct_0"}'::jsonb)`);
      const html = await (await client.get('/jobs?queue=bulk')).text();
      expect(idsOn(html)).toEqual([]);
      expect(html).toContain('Searched job ids down to');
      let path = nextOn(html);
      const found: number[] = [];
      for (let i = 0; path && i < 20; i++) {
        const page = await (await client.get(path)).text();
        found.push(...idsOn(page));
        path = nextOn(page);
      }
      expect(found.length).toBe(5);
    } finally {
      await server.close();
    }
  });

  it('a history state (cancelled) is searched within the window too: job_history has no index on state', async () => {
    const local = await createTestDb();
    const s = new Sluice({ pool: local.pool, logger: logs.logger });
    const server = await startDashboard({ sluice: s, auth: { token: TOKEN }, port: 0, searchWindow: 1_000, logger: logs.logger });
    const historyReads = async () => {
      await local.pool.query('SELECT pg_stat_clear_snapshot()');
      return count(
        local.pool,
        `SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) AS n
         FROM pg_stat_user_tables WHERE schemaname = 'sluice' AND relname LIKE 'job_history%'`,
      );
    };
    try {
      // A busy day: 20,000 completed jobs, none cancelled.
      await local.pool.query(
        `SELECT count(*) FROM sluice.enqueue_many('bulk.touch', (SELECT jsonb_agg(jsonb_build_object('n', g)) FROM generate_series(1, 20000) g), queue => 'bulk')`,
      );
      await local.pool.query(`SELECT count(*) FROM sluice.move_to_history(ARRAY(SELECT id FROM sluice.jobs ORDER BY id), 'completed')`);
      await local.pool.query('ANALYZE sluice.job_history');
      const client = await signedIn(server);
      const before = await historyReads();
      const html = await (await client.get('/jobs?state=cancelled')).text();
      expect(idsOn(html)).toEqual([]);
      expect(html).toContain('Searched job ids down to');
      // A backend reports its table statistics within seconds of going idle.
      const read = await waitUntil(async () => (await historyReads()) - before || null, { timeoutMs: 25_000, intervalMs: 250, what: 'table statistics' });
      expect(read).toBeLessThanOrEqual(2_000);
    } finally {
      await server.close();
      await s.close();
      await local.drop();
    }
  });

  it('a tag link on the job page lists the jobs with that tag, even an all-digit tag (never read as an id)', async () => {
    const client = await signedIn(rw);
    const tagged = await sluice.enqueue(bulkJob, { n: 1 }, { tags: [String(seeded.completedId)] });
    const page = await (await client.get(`/jobs/${tagged}`)).text();
    const link = /<a class="tag" href="([^"]+)"/.exec(page)![1]!.replaceAll('&amp;', '&');
    expect(link).toBe(`/jobs?tag=${seeded.completedId}`);
    const listed = await (await client.get(link)).text();
    expect(idsOn(listed)).toEqual([tagged]);
    // The filter form keeps the tag, so filtering further does not drop it.
    expect(listed).toContain(`<input name="tag" value="${seeded.completedId}"`);
    // The search box still reads digits as an id.
    expect(idsOn(await (await client.get(`/jobs?q=${seeded.completedId}`)).text())).toEqual([seeded.completedId]);
  });
});

describe('read-only database role', () => {
  it('every page works under a login in sluice_readonly (sql/roles.sql)', async () => {
    const role = `dash_ro_${db.name.slice(-8)}`;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    let roPool: pg.Pool | undefined;
    let server: DashboardServer | undefined;
    let roSluice: Sluice | undefined;
    try {
      await admin.query(readFileSync(new URL('../packages/sluice/sql/roles.sql', import.meta.url), 'utf8'));
      // DDL takes no parameters; role name and password are hex we made.
      const password = randomBytes(12).toString('hex');
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' IN ROLE sluice_readonly`);
      const url = new URL(db.url);
      url.username = role;
      url.password = password;
      roPool = new pg.Pool({ connectionString: url.toString(), max: 4 });
      roSluice = new Sluice({ pool: roPool, logger: logs.logger });
      // The role really cannot write:
      await expect(roPool.query(`UPDATE sluice.queues SET paused = true`)).rejects.toMatchObject({ code: '42501' });
      server = await startDashboard({ sluice: roSluice, auth: { token: TOKEN }, port: 0, readOnly: true, logger: logs.logger });
      const client = await signedIn(server);
      for (const path of [...PAGES, '/?range=day', `/jobs/${seeded.runningId}`, `/jobs/${seeded.deadIds[1]}`, '/jobs?q=signup', '/jobs?state=dead']) {
        const res = await client.get(path);
        expect(res.status, path).toBe(200);
      }
      // Read-write mode on the read-only role: an action fails cleanly, naming the cause.
      const rwServer = await startDashboard({ sluice: roSluice, auth: { token: TOKEN }, port: 0, logger: logs.logger });
      try {
        const rwClient = await signedIn(rwServer);
        const res = await rwClient.post('/queues/emails/pause', { _csrf: await rwClient.csrf('/queues') });
        expect(res.status).toBe(403);
        expect(await res.text()).toContain('permission denied');
      } finally {
        await rwServer.close();
      }
    } finally {
      await server?.close();
      await roSluice?.close();
      await roPool?.end();
      await admin.query(`DROP OWNED BY ${role}`).catch(() => {});
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
      await admin.end();
    }
  });
});

describe('dead letters of one queue', () => {
  const idsOn = (html: string) => [...html.matchAll(/<tr data-id="(\d+)">/g)].map((m) => Number(m[1]));

  it('lists every dead job of the queue and offers "Replay all" however many newer ids other queues used', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, searchWindow: 1_000, pageSize: 50, logger: logs.logger });
    const roWindowed = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, searchWindow: 1_000, readOnly: true, logger: logs.logger });
    try {
      // Newer traffic elsewhere: 5,000 ids above every dead job, one job of queue "bulk".
      await db.pool.query(`SELECT setval(pg_get_serial_sequence('sluice.jobs', 'id'), (SELECT max(id) FROM sluice.dead_jobs) + 5000)`);
      await sluice.enqueue(bulkJob, { n: 2 });
      const dead = (await db.pool.query<{ id: string }>(`SELECT id FROM sluice.dead_jobs WHERE queue = 'emails' ORDER BY id DESC`)).rows.map((r) => Number(r.id));
      expect(dead.length).toBeGreaterThan(0);
      const html = await (await (await signedIn(server)).get('/dlq?queue=emails')).text();
      expect(idsOn(html)).toEqual(dead);
      expect(html).toContain('value="replay-all"');
      expect(html).toContain('value="purge-all"');
      // The queue-wide actions act on the queue, not on the page: offered even on a page without rows.
      const empty = await (await (await signedIn(server)).get(`/dlq?queue=emails&before=${Math.min(...dead)}`)).text();
      expect(idsOn(empty)).toEqual([]);
      expect(empty).toContain('value="replay-all"');
      expect(empty).not.toContain('value="replay"');
      const readOnly = await (await (await signedIn(roWindowed)).get('/dlq?queue=emails')).text();
      expect(readOnly).not.toContain('replay-all');
    } finally {
      await server.close();
      await roWindowed.close();
    }
  });
});

describe('cron page', () => {
  it('read-only: schedule payloads are not even read from the database', async () => {
    // Every row the dashboard reads through the pool, as text.
    const read: string[] = [];
    const query = db.pool.query.bind(db.pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
    const spy = vi.spyOn(db.pool, 'query').mockImplementation((async (...args: unknown[]) => {
      const result = await query(...args);
      read.push(JSON.stringify(result.rows));
      return result;
    }) as never);
    try {
      const roHtml = await (await (await signedIn(ro)).get('/cron')).text();
      expect(roHtml).toContain('data-schedule="nightly-report"');
      expect(read.join('\n')).not.toContain(PAYLOAD_SECRET);
      // The read-write page shows it, through the same pool.
      const rwHtml = await (await (await signedIn(rw)).get('/cron')).text();
      expect(rwHtml).toContain(PAYLOAD_SECRET);
      expect(read.join('\n')).toContain(PAYLOAD_SECRET);
    } finally {
      spy.mockRestore();
    }
  });
});
