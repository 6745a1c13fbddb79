// The dashboard's security over real HTTP, without a browser: it refuses to
// start without auth, signs in with constant-time compares, and refuses
// actions without the viewer's CSRF token, from other origins, or as GET.
import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CONTENT_SECURITY_POLICY,
  DashboardConfigError,
  createDashboard,
  startDashboard,
  type DashboardServer,
} from '../packages/dashboard/src/index.js';
import { defineJob, type Sluice } from '../packages/sluice/src/index.js';
import { DashboardClient } from './fixtures/dashboard-http.js';
import type { Seeded } from './fixtures/dashboard-seed.js';
import { PAGES, TOKEN, signedIn, useSeededDashboard } from './fixtures/dashboard-suite.js';
import { count, waitUntil, type TestDb } from './helpers/db.js';
import { requestFrom } from './helpers/from-address.js';

const suite = useSeededDashboard();
const logs = suite.logs;
let db: TestDb;
let sluice: Sluice;
let seeded: Seeded;
let rw: DashboardServer;

beforeAll(() => {
  ({ db, sluice, seeded, rw } = suite);
});

describe('secure by default', () => {
  it('refuses to be created without a usable auth setting', () => {
    const attempts: [unknown, string][] = [
      [undefined, 'auth'],
      [{}, 'auth'],
      [{ token: 'short' }, 'auth.token'],
      [{ user: 'ops', password: 'short' }, 'auth.password'],
      [{ token: TOKEN, user: 'ops' }, 'auth'],
      ['insecure-local', 'auth'],
    ];
    for (const [auth, option] of attempts) {
      let caught: unknown;
      try {
        createDashboard({ sluice, auth: auth as never });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(DashboardConfigError);
      expect((caught as DashboardConfigError).option).toBe(option);
      expect(String((caught as Error).message)).not.toContain(TOKEN);
    }
  });

  it('insecure-local listens on 127.0.0.1 only and answers loopback host names only', async () => {
    await expect(startDashboard({ sluice, auth: 'insecure-local', port: 0, host: '0.0.0.0' })).rejects.toBeInstanceOf(DashboardConfigError);
    const local = await startDashboard({ sluice, auth: 'insecure-local', port: 0, logger: logs.logger });
    try {
      expect(local.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${local.url}/`)).status).toBe(200);
      // A page of another site reaching it through a name that resolves to 127.0.0.1 (DNS rebinding):
      // (fetch will not send a chosen Host header; node:http will.)
      const rebound = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: local.port, path: '/', headers: { host: `evil.example:${local.port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(rebound).toBe(403);
    } finally {
      await local.close();
    }
  });

  it('sends the Content-Security-Policy and friends on every response', async () => {
    const client = await signedIn(rw);
    for (const path of [...PAGES, '/login', '/assets/dashboard.js', `/jobs/${seeded.deadIds[0]}`]) {
      const res = await client.get(path);
      expect(res.headers.get('content-security-policy'), path).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe-inline');
  });

  it('pages carry no inline script, style or event handler (the CSP would block them)', async () => {
    const client = await signedIn(rw);
    for (const path of [...PAGES, `/jobs/${seeded.deadIds[0]}`, `/jobs/${seeded.runningId}`, `/jobs/${seeded.completedId}`]) {
      const html = await (await client.get(path)).text();
      expect(html, path).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html, path).not.toMatch(/\sstyle=|<style/i);
      expect(html, path).not.toMatch(/\son[a-z]+=/i);
    }
  });
});

describe('sign-in', () => {
  it('sends a visitor without a session to the sign-in page, and keeps where they were going', async () => {
    const client = new DashboardClient(rw.url);
    for (const path of PAGES.filter((p) => p !== '/live')) {
      const res = await client.get(path);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(`/login?next=${encodeURIComponent(path)}`);
    }
    expect((await client.get('/live', { 'x-sluice-live': '1' })).status).toBe(401);
    expect((await client.post('/queues/emails/pause', { _csrf: 'x' })).status).toBe(401);
  });

  it('refuses a wrong token, a longer one and a prefix; a forged or expired cookie is no session', async () => {
    const client = new DashboardClient(rw.url);
    for (const token of ['wrong-token-0123456789abcdef', `${TOKEN}x`, TOKEN.slice(0, -1), '']) {
      const res = await client.signIn({ token });
      expect(res.status).toBe(401);
      const html = await res.text();
      expect(html).toContain('Wrong access token');
      expect(html).not.toContain(TOKEN);
      expect(client.cookies.has('sluice_dash')).toBe(false);
    }
    client.cookies.set('sluice_dash', `${Date.now() + 60_000}.${'A'.repeat(24)}.${'B'.repeat(43)}`);
    expect((await client.get('/')).status).toBe(303);
    expect(logs.lines.some((l) => JSON.stringify(l).includes(TOKEN))).toBe(false);
  });

  it('signs in with the token, then signs out', async () => {
    const client = await signedIn(rw);
    expect((await client.get('/')).status).toBe(200);
    const csrf = await client.csrf('/');
    expect((await client.post('/logout', { _csrf: csrf })).status).toBe(303);
    expect((await client.get('/')).status).toBe(303);
  });

  it('signing out ends the session: a copy of its cookie no longer works, on any instance; other sessions go on', async () => {
    const secret = 's'.repeat(40);
    const [a, b] = await Promise.all([0, 1].map(() => startDashboard({ sluice, auth: { token: TOKEN }, sessionSecret: secret, port: 0, logger: logs.logger })));
    try {
      const client = await signedIn(a!);
      const other = await signedIn(a!);
      // The same cookie, copied to another browser and to another instance.
      const copy = new DashboardClient(a!.url);
      const copyOnB = new DashboardClient(b!.url);
      for (const c of [copy, copyOnB]) c.cookies.set('sluice_dash', client.cookies.get('sluice_dash')!);
      expect((await copy.get('/queues')).status).toBe(200);
      expect((await copyOnB.get('/queues')).status).toBe(200);
      const csrf = await copy.csrf('/queues');

      expect((await client.post('/logout', { _csrf: await client.csrf('/') })).status).toBe(303);
      expect((await copy.get('/queues')).status).toBe(303);
      expect((await copyOnB.get('/queues')).status).toBe(303);
      expect((await copy.post('/queues/emails/pause', { _csrf: csrf })).status).toBe(401);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'emails' AND paused`)).toBe(0);
      expect((await other.get('/queues')).status).toBe(200);
    } finally {
      await Promise.all([a?.close(), b?.close()]);
    }
  });

  it('user and password: both must match', async () => {
    const server = await startDashboard({ sluice, auth: { user: 'ops', password: 'correct horse battery' }, port: 0, logger: logs.logger });
    try {
      const client = new DashboardClient(server.url);
      expect((await client.signIn({ user: 'ops', password: 'wrong horse battery' })).status).toBe(401);
      expect((await client.signIn({ user: 'admin', password: 'correct horse battery' })).status).toBe(401);
      expect((await client.signIn({ user: 'ops', password: 'correct horse battery' })).status).toBe(303);
      expect((await client.get('/workers')).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  // A TLS proxy that writes the header in capitals, or a chain of proxies
  // that lists each hop, sent the session cookie without Secure: a browser
  // would then send it over plain http to the same host.
  it('marks the session cookie Secure behind a TLS proxy however it writes X-Forwarded-Proto, and not over plain http', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, logger: logs.logger });
    const signIn = (headers: Record<string, string>) =>
      requestFrom('127.0.0.1', `${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ token: TOKEN, next: '/' }).toString(),
      });
    try {
      for (const proto of ['https', 'HTTPS', 'https,http', 'https, http']) {
        const r = await signIn({ 'x-forwarded-proto': proto });
        expect(r.status).toBe(303);
        expect(String(r.headers['set-cookie'])).toMatch(/sluice_dash=[^;]+;.*\bSecure\b/);
      }
      const plain = await signIn({});
      expect(plain.status).toBe(303);
      expect(String(plain.headers['set-cookie'])).not.toMatch(/\bSecure\b/);
    } finally {
      await server.close();
    }
  });

  it('locks out an address after repeated failures, longer each time; a correct token from another address still signs in', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, logger: logs.logger });
    const signIn = (address: string, token: string, headers: Record<string, string> = {}) =>
      requestFrom(address, `${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ token, next: '/' }).toString(),
      });
    const WRONG = 'wrong-token-0123456789abcdef';
    try {
      const failures = await Promise.all(Array.from({ length: 5 }, () => signIn('127.0.0.5', WRONG)));
      expect(failures.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
      // The failure that starts the lockout says how long it lasts.
      expect(failures.map((r) => r.headers['retry-after']).filter(Boolean)).toEqual(['2']);
      // Locked out: the correct token is not even checked, and a forged X-Forwarded-For changes nothing.
      for (const headers of [{}, { 'x-forwarded-for': '198.51.100.7' }] as Record<string, string>[]) {
        const locked = await signIn('127.0.0.5', TOKEN, headers);
        expect(locked.status).toBe(429);
        expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(locked.body).toContain('Too many failed sign-ins');
        expect(locked.headers['set-cookie']).toBeUndefined();
      }
      const other = await signIn('127.0.0.6', TOKEN);
      expect(other.status).toBe(303);
      expect(String(other.headers['set-cookie'])).toContain('sluice_dash=');
      // Once the lockout ends, one more failure locks the address out for twice as long.
      const sixth = await waitUntil(async () => {
        const r = await signIn('127.0.0.5', WRONG);
        return r.status === 401 ? r : null;
      }, { what: 'the first lockout to end' });
      expect(sixth.headers['retry-after']).toBe('4');
      expect((await signIn('127.0.0.5', TOKEN)).status).toBe(429);
    } finally {
      await server.close();
    }
  });

  it('too many failures from many addresses lock sign-in for addresses without a recent success (X-Forwarded-For with trustProxy)', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0, logger: logs.logger, trustProxy: true, maxFailedSignInsPerMinute: 10 });
    const signIn = (forwardedFor: string, token: string) =>
      requestFrom('127.0.0.1', `${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': `203.0.113.250, ${forwardedFor}` },
        body: new URLSearchParams({ token, next: '/' }).toString(),
      });
    try {
      expect((await signIn('198.51.100.1', TOKEN)).status).toBe(303);
      const spread = await Promise.all(Array.from({ length: 10 }, (_, i) => signIn(`198.51.100.${10 + i}`, 'wrong-token-0123456789abcdef')));
      expect(spread.map((r) => r.status)).toEqual(Array(10).fill(401));
      const fresh = await signIn('198.51.100.99', TOKEN);
      expect(fresh.status).toBe(429);
      expect(Number(fresh.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // The address that signed in before still can; the proxy's own entry is not the client.
      expect((await signIn('198.51.100.1', TOKEN)).status).toBe(303);
    } finally {
      await server.close();
    }
  });

  it('only redirects within the dashboard after sign-in', async () => {
    const client = new DashboardClient(rw.url);
    const res = await client.post('/login', { token: TOKEN, next: '//evil.example/' });
    expect(res.headers.get('location')).toBe('/');
  });
});

describe('actions: POST with CSRF protection', () => {
  it('refuses a POST without the token, with a wrong one, with another session\'s, from another origin, or as JSON', async () => {
    const client = await signedIn(rw);
    const other = await signedIn(rw);
    const otherCsrf = await other.csrf('/queues');
    const csrf = await client.csrf('/queues');
    const attempts: [Record<string, string>, Record<string, string>][] = [
      [{}, {}],
      [{ _csrf: 'forged' }, {}],
      [{ _csrf: otherCsrf }, {}],
      [{ _csrf: csrf }, { origin: 'https://evil.example' }],
      [{ _csrf: csrf }, { 'sec-fetch-site': 'cross-site' }],
    ];
    for (const [form, headers] of attempts) {
      const res = await client.post('/queues/emails/pause', form, headers);
      expect(res.status).toBe(403);
    }
    const json = await fetch(`${rw.url}/queues/emails/pause`, {
      method: 'POST',
      headers: { cookie: [...client.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'content-type': 'application/json' },
      body: JSON.stringify({ _csrf: csrf }),
    });
    expect(json.status).toBe(403);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'emails' AND paused`)).toBe(0);
  });

  it('a GET never changes anything: actions are POST only', async () => {
    const client = await signedIn(rw);
    expect((await client.get('/queues/emails/pause')).status).toBe(404);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'emails' AND paused`)).toBe(0);
  });

  it('pauses and resumes a queue, saves limits, and names the field of a bad limit', async () => {
    const client = await signedIn(rw);
    const csrf = await client.csrf('/queues');
    const paused = await client.post('/queues/bulk/pause', { _csrf: csrf });
    expect(paused.status).toBe(303);
    expect(paused.headers.get('location')).toBe('/queues?ok=paused');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bulk' AND paused`)).toBe(1);
    expect((await client.post('/queues/bulk/resume', { _csrf: csrf })).status).toBe(303);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bulk' AND paused`)).toBe(0);

    const limits = { _csrf: csrf, concurrency: '3', group_concurrency: '', rate_limit_count: '100', rate_limit_interval_ms: '60000', max_depth: '', overflow: 'reject', weight: '2' };
    expect((await client.post('/queues/bulk/limits', limits)).status).toBe(303);
    const { rows } = await db.pool.query(`SELECT concurrency, rate_limit_count, rate_limit_interval_ms, weight, max_depth FROM sluice.queues WHERE name = 'bulk'`);
    expect(rows[0]).toEqual({ concurrency: 3, rate_limit_count: 100, rate_limit_interval_ms: 60000, weight: 2, max_depth: null });

    const bad = await client.post('/queues/bulk/limits', { ...limits, concurrency: '-1' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('concurrency: must be empty or an integer');
    const half = await client.post('/queues/bulk/limits', { ...limits, rate_limit_interval_ms: '' });
    expect(half.status).toBe(400);
    expect((await client.post('/queues/nope/pause', { _csrf: csrf })).status).toBe(404);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'nope'`)).toBe(0);
    expect((await client.post('/queues/bulk/limits', { ...limits, concurrency: '' })).status).toBe(303);
  });

  it('cron: disable, enable, run now', async () => {
    const client = await signedIn(rw);
    const csrf = await client.csrf('/cron');
    expect((await client.post('/cron/nightly-report/disable', { _csrf: csrf })).status).toBe(303);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.cron_schedules WHERE NOT enabled`)).toBe(1);
    expect((await client.post('/cron/nightly-report/enable', { _csrf: csrf })).status).toBe(303);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.cron_schedules WHERE enabled AND next_run_at > now()`)).toBe(1);
    const ran = await client.post('/cron/nightly-report/run', { _csrf: csrf });
    const id = Number(/n=(\d+)/.exec(ran.headers.get('location') ?? '')![1]);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1 AND name = 'report.build' AND 'cron:nightly-report' = ANY(tags)`, [id])).toBe(1);
    expect((await client.post('/cron/missing/run', { _csrf: csrf })).status).toBe(404);
  });

  it('dead letters: purge one, refuse a replay of a job that is no longer dead', async () => {
    const client = await signedIn(rw);
    const csrf = await client.csrf('/dlq');
    const [first] = seeded.deadIds;
    const purged = await client.post('/dlq/action', { _csrf: csrf, do: 'purge', ids: [String(first)] });
    expect(purged.headers.get('location')).toBe('/dlq?ok=purged&n=1');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1`, [first])).toBe(0);
    const stale = await client.post('/dlq/action', { _csrf: csrf, do: 'replay', ids: [String(first), String(seeded.deadIds[1])] });
    expect(stale.status).toBe(409);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1`, [seeded.deadIds[1]])).toBe(1);
    expect((await client.post('/dlq/action', { _csrf: csrf, do: 'replay', ids: ['abc'] })).status).toBe(400);
    expect((await client.post('/dlq/action', { _csrf: csrf, do: 'explode' })).status).toBe(400);
  });

  it('dead letters: a replay of a child whose parent is still dead is refused with 409, naming both, replaying nothing', async () => {
    const step = defineJob({ name: 'dash.replay.step', queue: 'dash-replay', schema: z.object({}) });
    const parent = await sluice.enqueue(step, {});
    const child = await sluice.enqueue(step, {}, { dependsOn: [parent] });
    // The parent dies; its waiting child follows it as parent_dead.
    await db.pool.query(`SELECT sluice.move_to_dead(ARRAY[$1::bigint], ARRAY['{"message":"x"}'::jsonb], ARRAY['exhausted'])`, [parent]);
    const client = await signedIn(rw);
    const csrf = await client.csrf('/dlq');
    const refused = await client.post('/dlq/action', { _csrf: csrf, do: 'replay', ids: [String(child)] });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain(`job ${child} on dead job ${parent}`);
    expect((await sluice.getJob(child)).state).toBe('dead');
    expect((await client.post('/dlq/action', { _csrf: csrf, do: 'replay-all', queue: 'dash-replay' })).status).toBe(303);
    // Replay-all takes the parent with its child: the child waits for it.
    expect((await sluice.getJob(child)).state).toBe('waiting');
  });
});

describe('auth: the host application decides', () => {
  it('authorize(request) admits or refuses each request; actions still need the CSRF token', async () => {
    const server = await startDashboard({
      sluice,
      auth: { authorize: (request) => request.headers.get('x-user') === 'admin' },
      port: 0,
      logger: logs.logger,
    });
    try {
      expect((await fetch(`${server.url}/`)).status).toBe(403);
      const client = new DashboardClient(server.url);
      const admin = { 'x-user': 'admin' };
      expect((await client.get('/login', admin)).status).toBe(404);
      const page = await client.get('/queues', admin);
      expect(page.status).toBe(200);
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
      expect((await client.post('/queues/bulk/pause', { _csrf: 'forged' }, admin)).status).toBe(403);
      expect((await client.post('/queues/bulk/pause', { _csrf: csrf }, { 'x-user': 'guest' })).status).toBe(403);
      expect((await client.post('/queues/bulk/pause', { _csrf: csrf }, admin)).status).toBe(303);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bulk' AND paused`)).toBe(1);
      await sluice.queues.resume('bulk');
    } finally {
      await server.close();
    }
  });
});

describe('bad input', () => {
  it('every bad query, path or form value is a 400 naming the field, never a 500; nothing changes', async () => {
    const client = await signedIn(rw);
    const csrf = await client.csrf('/queues');
    const gets: [string, RegExp][] = [
      ['/jobs?q=%00', /q: /],
      ['/jobs?q=tag%00text', /q: /],
      [`/jobs?q=${'x'.repeat(129)}`, /q: at most/],
      ['/jobs?tag=tag%00text', /tag: /],
      [`/jobs?tag=${'x'.repeat(129)}`, /tag: at most/],
      ['/jobs?queue=%00', /queue: /],
      ['/jobs?name=a%00', /name: /],
      ['/jobs?state=%00', /state: /],
      ['/jobs?worker=%00', /worker: /],
      ['/jobs?before=%00', /before: /],
      ['/jobs?before=99999999999999999', /before: /],
      ['/jobs/%00', /id: /],
      ['/jobs/1%00', /id: /],
      ['/dlq?queue=%00', /queue: /],
      ['/dlq?name=%ZZ', /name: /],
      ['/?queue=%00', /queue: /],
    ];
    for (const [path, message] of gets) {
      const res = await client.get(path);
      expect(res.status, path).toBe(400);
      expect(await res.text(), path).toMatch(message);
    }
    const posts: [string, Record<string, string | string[]>, RegExp][] = [
      ['/dlq/action', { do: 'replay', ids: ['1\u0000'] }, /ids: /],
      ['/dlq/action', { do: 'purge-all', queue: 'emails\u0000' }, /queue: /],
      ['/dlq/action', { do: 'replay\u0000' }, /do: /],
      ['/queues/emails%00/pause', {}, /queue: /],
      ['/queues/emails/limits', { concurrency: '1\u0000' }, /concurrency: /],
      ['/queues/emails/limits', { overflow: 'reject\u0000' }, /overflow: /],
      ['/cron/nightly%00report/run', {}, /schedule: /],
      ['/jobs/%00/retry', {}, /id: /],
    ];
    for (const [path, form, message] of posts) {
      const res = await client.post(path, { _csrf: csrf, ...form });
      expect(res.status, path).toBe(400);
      expect(await res.text(), path).toMatch(message);
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE paused OR concurrency = 1`)).toBe(0);
    expect(logs.lines.filter((l) => l.msg === 'dashboard request failed')).toEqual([]);
  });

  it('a notice code (?ok=) naming an Object.prototype member is ignored like any unknown code, never a 500', async () => {
    const client = await signedIn(rw);
    expect(await (await client.get('/queues?ok=paused')).text()).toContain('class="notice');
    for (const code of ['bogus', '__proto__', 'valueOf', 'hasOwnProperty', 'toString', 'constructor']) {
      const res = await client.get(`/queues?ok=${code}&n=42`);
      expect(res.status, code).toBe(200);
      expect(await res.text(), code).not.toContain('class="notice');
    }
    expect(logs.lines.filter((l) => l.msg === 'dashboard request failed')).toEqual([]);
  });
});
