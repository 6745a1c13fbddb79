import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHttpApi, startHttpApi, type HttpApiServer } from '../packages/sluice/src/http/index.js';
import { Sluice, ValidationError, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';
import { requestFrom } from './helpers/from-address.js';
import { captureLogs } from './helpers/log-capture.js';

const TOKEN = 'test-token-0123456789abcdef';
const SECRET = 'hunter2-credit-card-4111';

const signup = defineJob({
  name: 'user.signup',
  queue: 'http',
  schema: z.object({ email: z.string().email(), plan: z.enum(['free', 'pro']) }),
});
const internal = defineJob({ name: 'internal.only', queue: 'http', schema: z.object({}) });

let db: TestDb;
let sluice: Sluice;
let server: HttpApiServer;
const logs = captureLogs();

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool, logger: logs.logger });
  server = await startHttpApi({ sluice, jobs: [signup], token: TOKEN, maxBodyBytes: 4096, port: 0, logger: logs.logger });
});
afterAll(async () => {
  await server.close();
  await db.drop();
});

function call(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const { token = TOKEN, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  if (rest.body) headers.set('content-type', 'application/json');
  return fetch(`${server.url}${path}`, { ...rest, headers });
}

// fetch's json() is typed unknown; these tests read known shapes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (r: Response): Promise<any> => r.json();
const jobsIn = (queue: string) => count(db.pool, 'SELECT count(*) n FROM sluice.jobs WHERE queue = $1', [queue]);

describe('HTTP API over real HTTP', () => {
  it('listens on 127.0.0.1 by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses requests without the right bearer token', async () => {
    for (const token of [null, 'wrong-token-0123456789abcdef', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const res = await call('/queues', { token });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      expect((await json(res)).error.code).toBe('unauthorized');
    }
    const bad = await call('/jobs/user.signup', { token: null, method: 'POST', body: JSON.stringify({ payload: { email: 'a@b.co', plan: 'pro' } }) });
    expect(bad.status).toBe(401);
    expect(await jobsIn('http')).toBe(0);
  });

  it('enqueues a registered job type and reports its status', async () => {
    const res = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'a@b.co', plan: 'pro' }, priority: 3, tags: ['api'] }) });
    expect(res.status).toBe(201);
    const { id } = await json(res);
    const { rows } = await db.pool.query('SELECT name, payload, priority, tags FROM sluice.jobs WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ name: 'user.signup', payload: { email: 'a@b.co', plan: 'pro' }, priority: 3, tags: ['api'] });
    const status = await call(`/jobs/${id}`);
    expect(status.status).toBe(200);
    const body = await json(status);
    expect(body).toMatchObject({ id, name: 'user.signup', queue: 'http', state: 'available', attempt: 0, lastError: null });
    expect(body).not.toHaveProperty('payload');
  });

  it('validates the payload with the job schema, echoes no value, writes nothing', async () => {
    const before = await jobsIn('http');
    const res = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: SECRET, plan: SECRET } }) });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const { error } = JSON.parse(text);
    expect(error.code).toBe('invalid_payload');
    expect(error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['email', 'plan']);
    expect(await jobsIn('http')).toBe(before);
  });

  it('bad JSON, unknown fields and bad options are 400 naming the field, without echoing the body', async () => {
    const broken = await call('/jobs/user.signup', { method: 'POST', body: `{"payload": ${SECRET}` });
    expect(broken.status).toBe(400);
    const brokenText = await broken.text();
    expect(brokenText).not.toContain(SECRET);
    expect(JSON.parse(brokenText).error).toMatchObject({ code: 'invalid_request', field: 'body' });
    const extra = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'a@b.co', plan: 'pro' }, sneaky: SECRET }) });
    expect(extra.status).toBe(400);
    expect(await extra.text()).not.toContain(SECRET);
    const prio = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'a@b.co', plan: 'pro' }, priority: 99999 }) });
    expect(prio.status).toBe(400);
    expect((await json(prio)).error.field).toBe('body.priority');
    const runAt = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'a@b.co', plan: 'pro' }, runAt: 'tomorrow' }) });
    expect((await json(runAt)).error.field).toBe('body.runAt');
    const missing = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({}) });
    expect(missing.status).toBe(400);
    expect(await jobsIn('http')).toBe(1);
  });

  it('only the job types given are exposed', async () => {
    for (const name of ['internal.only', 'nope']) {
      const res = await call(`/jobs/${name}`, { method: 'POST', body: JSON.stringify({ payload: {} }) });
      expect(res.status).toBe(404);
      expect((await json(res)).error.code).toBe('unknown_job');
    }
    void internal;
  });

  it('caps the body size: 413, nothing written', async () => {
    const before = await jobsIn('http');
    const big = JSON.stringify({ payload: { email: 'a@b.co', plan: 'pro', pad: SECRET.repeat(400) } });
    const res = await call('/jobs/user.signup', { method: 'POST', body: big });
    expect(res.status).toBe(413);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(JSON.parse(text).error.code).toBe('body_too_large');
    // Without a Content-Length (chunked), the limit still holds.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(big.slice(i * 1000, (i + 1) * 1000)));
        c.close();
      },
    });
    const chunked = await call('/jobs/user.signup', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await jobsIn('http')).toBe(before);
  });

  it('job status: bad id 400, unknown id 404', async () => {
    expect((await call('/jobs/abc')).status).toBe(400);
    expect((await call('/jobs/0')).status).toBe(400);
    const missing = await call('/jobs/987654');
    expect(missing.status).toBe(404);
    expect((await json(missing)).error.code).toBe('not_found');
  });

  it('queue stats, for all queues and one', async () => {
    const all = await json(await call('/queues'));
    expect(all.queues.find((q: { queue: string }) => q.queue === 'http')).toMatchObject({ queue: 'http', available: 1, paused: false });
    const one = await call('/queues/http');
    expect(await json(one)).toMatchObject({ queue: 'http', available: 1, dead: 0 });
    expect((await call('/queues/ghost')).status).toBe(404);
  });

  it('replays dead jobs; an unknown id replays nothing', async () => {
    const id = await sluice.enqueue(signup, { email: 'd@b.co', plan: 'free' });
    await db.pool.query(`SELECT sluice.move_to_dead(ARRAY[$1::bigint], ARRAY['{"message":"x"}'::jsonb], ARRAY['exhausted'])`, [id]);
    const bad = await call('/dlq/replay', { method: 'POST', body: JSON.stringify({ ids: [id, 424242] }) });
    expect(bad.status).toBe(404);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [id])).toBe(1);
    const res = await call('/dlq/replay', { method: 'POST', body: JSON.stringify({ ids: [id] }) });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ replayed: [id] });
    expect((await sluice.getJob(id)).state).toBe('available');
    expect((await call('/dlq/replay', { method: 'POST', body: JSON.stringify({ ids: [] }) })).status).toBe(400);
  });

  it('refuses to replay a dead job whose parent is still dead: 409, the parent unnamed (its type may be hidden), nothing replayed', async () => {
    const parent = await sluice.enqueue(internal, {});
    const child = await sluice.enqueue(signup, { email: 'f@b.co', plan: 'free' }, { dependsOn: [parent] });
    // The parent dies; its waiting child follows it as parent_dead.
    await db.pool.query(`SELECT sluice.move_to_dead(ARRAY[$1::bigint], ARRAY['{"message":"x"}'::jsonb], ARRAY['exhausted'])`, [parent]);
    const res = await call('/dlq/replay', { method: 'POST', body: JSON.stringify({ ids: [child] }) });
    expect(res.status).toBe(409);
    const { error } = await json(res);
    expect(error.code).toBe('dependency_not_completed');
    expect(error.message).toContain(`dead job(s) ${child} depend`);
    expect(error.message).not.toContain(String(parent));
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = $1', [child])).toBe(1);
  });

  it('the allow-list holds on every route: another job type answers as a missing one, and nothing changes', async () => {
    const hidden = defineJob({ name: 'hidden.type', queue: 'hidden_q', schema: z.object({}) });
    const [hiddenId, hiddenDeadId, shownDeadId] = [
      await sluice.enqueue(hidden, {}),
      await sluice.enqueue(hidden, {}),
      await sluice.enqueue(signup, { email: 'e@b.co', plan: 'free' }),
    ];
    await db.pool.query(`SELECT sluice.move_to_dead($1::bigint[], ARRAY['{"message":"x"}'::jsonb, '{"message":"x"}'::jsonb], ARRAY['exhausted', 'exhausted'])`, [[hiddenDeadId, shownDeadId]]);

    // GET /jobs/:id: the same answer as for an id that does not exist.
    const shown = await call(`/jobs/${shownDeadId}`);
    expect(shown.status).toBe(200);
    const other = await call(`/jobs/${hiddenId}`);
    expect(other.status).toBe(404);
    expect(await json(other)).toEqual({ error: { code: 'not_found', message: `no job with id ${hiddenId}` } });

    // POST /dlq/replay: a hidden dead job is refused like an unknown one, alone or beside an exposed one.
    for (const ids of [[hiddenDeadId], [shownDeadId, hiddenDeadId]]) {
      const res = await call('/dlq/replay', { method: 'POST', body: JSON.stringify({ ids }) });
      expect(res.status, ids.join()).toBe(404);
      expect(await json(res)).toEqual({ error: { code: 'not_found', message: `no dead job with id ${hiddenDeadId}` } });
    }
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs WHERE id = ANY($1)', [[hiddenDeadId, shownDeadId]])).toBe(2);
    const replay = await call('/dlq/replay', { method: 'POST', body: JSON.stringify({ ids: [shownDeadId] }) });
    expect(await json(replay)).toEqual({ replayed: [shownDeadId] });

    // Queue stats: only the queues of the exposed job types.
    const all = await json(await call('/queues'));
    expect(all.queues.map((q: { queue: string }) => q.queue)).toEqual(['http']);
    expect((await call('/queues/hidden_q')).status).toBe(404);
    expect((await sluice.getJob(hiddenId)).state).toBe('available');
  });

  it('a unique key held by a hidden job type is a 409 that reveals no id, and writes nothing', async () => {
    const internalId = await sluice.enqueue(internal, {}, { uniqueKey: 'probe-me' });
    const res = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'p@b.co', plan: 'free' }, uniqueKey: 'probe-me' }) });
    expect(res.status).toBe(409);
    const body = await json(res);
    expect(body.error.code).toBe('unique_key_conflict');
    expect(JSON.stringify(body)).not.toContain(String(internalId));
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE unique_key = 'probe-me'`)).toBe(1);
    // The same key on the exposed type's own live job still answers with its id.
    const mine = await json(await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'p@b.co', plan: 'free' }, uniqueKey: 'mine' }) }));
    const again = await json(await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: 'p@b.co', plan: 'free' }, uniqueKey: 'mine' }) }));
    expect(again.id).toBe(mine.id);
  });

  it('every bad input is a 400 naming what was wrong, never a 500; nothing is written', async () => {
    const before = await jobsIn('http');
    const ok = { email: 'a@b.co', plan: 'pro' };
    const enqueue = (body: unknown) => ({ method: 'POST', path: '/jobs/user.signup', body: typeof body === 'string' ? body : JSON.stringify(body) });
    const cases: [{ method?: string; path: string; body?: string }, string][] = [
      [enqueue('{"payload":'), 'body'],
      [enqueue('null'), 'body'],
      [enqueue('[1]'), 'body'],
      [enqueue({ payload: ok, tags: ['a\u0000b'] }), 'body.tags.0'],
      [enqueue({ payload: ok, uniqueKey: 'k\u0000' }), 'body.uniqueKey'],
      [enqueue({ payload: ok, tags: ['\ud800'] }), 'body.tags.0'],
      [enqueue({ payload: { ...ok, plan: 'pro\u0000' } }), 'body.payload.plan'],
      [enqueue({ payload: ok, ['k\u0000']: 1 }), 'body.*'],
      [enqueue({ payload: ok, priority: 'soonish' }), 'body.priority'],
      [enqueue({ payload: ok, delayMs: -1 }), 'body.delayMs'],
      [enqueue({ payload: ok, runAt: '2026-13-45T99:00:00Z' }), 'body.runAt'],
      [enqueue({ payload: ok, tags: 'one' }), 'body.tags'],
      [enqueue(`{"payload":${'['.repeat(2_000)}${']'.repeat(2_000)}}`), 'body'],
      [{ method: 'POST', path: '/jobs/user.signup%00', body: JSON.stringify({ payload: ok }) }, 'name'],
      [{ path: '/jobs/1%00' }, 'id'],
      [{ path: '/jobs/9999999999999999' }, 'id'],
      [{ path: '/queues/http%00' }, 'name'],
      [{ method: 'POST', path: '/dlq/replay', body: JSON.stringify({ ids: ['1'] }) }, 'body.ids.0'],
      [{ method: 'POST', path: '/dlq/replay', body: JSON.stringify({ ids: [1.5] }) }, 'body.ids.0'],
      [{ method: 'POST', path: '/dlq/replay', body: JSON.stringify({ ids: [1], x: '\u0000' }) }, 'body.x'],
    ];
    for (const [req, field] of cases) {
      const res = await call(req.path, { method: req.method ?? 'GET', ...(req.body !== undefined ? { body: req.body } : {}) });
      const what = `${req.method ?? 'GET'} ${req.path} ${req.body?.slice(0, 80) ?? ''}`;
      expect(res.status, what).toBe(400);
      const { error } = await json(res);
      expect(error.code, what).toMatch(/^invalid_(request|payload)$/);
      expect(error.field ?? `payload:${error.issues?.[0]?.path}`, what).toBe(field);
    }
    // Nesting deep enough to overflow a recursive walk, under the default body limit.
    const api = createHttpApi({ sluice, jobs: [signup], token: TOKEN, logger: logs.logger });
    const deep = await api.request('/jobs/user.signup', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: `{"payload":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
    });
    expect(deep.status).toBe(400);
    expect(await jobsIn('http')).toBe(before);
    expect(logs.lines.filter((l) => l.msg === 'HTTP API request failed')).toEqual([]);
  });

  it('locks out an address after repeated wrong tokens (429, Retry-After); the right token from another address still works', async () => {
    const from = (address: string, token: string) => requestFrom(address, `${server.url}/queues`, { headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 5; i++) expect((await from('127.0.0.3', 'wrong-token-0123456789abcdef')).status).toBe(401);
    // Locked out: even the right token is not checked.
    const locked = await from('127.0.0.3', TOKEN);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(locked.body).error.code).toBe('too_many_failures');
    expect((await from('127.0.0.4', TOKEN)).status).toBe(200);
    expect((await call('/queues')).status).toBe(200);
  });

  it('a database error is a 500 that quotes nothing; its log line names the constraint, not the row', async () => {
    await db.pool.query(`ALTER TABLE sluice.jobs ADD CONSTRAINT http_no_poison CHECK (unique_key IS DISTINCT FROM 'poison')`);
    try {
      const res = await call('/jobs/user.signup', { method: 'POST', body: JSON.stringify({ payload: { email: `${SECRET}@b.co`, plan: 'pro' }, uniqueKey: 'poison' }) });
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain(SECRET);
    } finally {
      await db.pool.query('ALTER TABLE sluice.jobs DROP CONSTRAINT http_no_poison');
    }
    const line = logs.lines.find((l) => l.msg === 'HTTP API request failed');
    expect(line?.err).toMatchObject({ code: '23514', constraint: 'http_no_poison', table: 'jobs' });
    expect(logs.raw.join('')).not.toContain(SECRET);
  });

  it('never logs payloads', () => {
    expect(logs.raw.join('')).not.toContain(SECRET);
  });

  it('is off unless created, and refuses a short token', () => {
    expect(() => createHttpApi({ sluice, jobs: [signup], token: 'short' })).toThrow(/httpApi\.token/);
    // A token no Authorization header could carry would lock every client out.
    for (const token of ['with a space 0123456789', 'tab\t0123456789abcdef', 'newline-0123456789abcdef\n'])
      expect(() => createHttpApi({ sluice, jobs: [signup], token }), JSON.stringify(token)).toThrow(/httpApi\.token/);
  });

  it('refuses a jobs list holding something other than a job definition, naming its index', () => {
    for (const bad of [null, 'user.signup', { name: 'user.signup' }]) {
      let err: unknown;
      try {
        createHttpApi({ sluice, jobs: [signup, bad] as never, token: TOKEN });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('httpApi.jobs.1');
    }
  });

  it('refuses two different job definitions with the same name: one of them would be silently unreachable', () => {
    const twin = defineJob({ name: 'user.signup', queue: 'http-other', schema: z.object({}) });
    expect(() => createHttpApi({ sluice, jobs: [signup, twin], token: TOKEN })).toThrow(
      expect.objectContaining({ name: 'ValidationError', field: 'httpApi.jobs.1', message: expect.stringContaining('"user.signup"') }),
    );
    // The same definition listed twice is harmless.
    expect(() => createHttpApi({ sluice, jobs: [signup, signup], token: TOKEN })).not.toThrow();
  });

  it('mounts under a path of another Hono app', async () => {
    const parent = new Hono();
    parent.get('/health', (c) => c.text('ok'));
    parent.route('/ops', createHttpApi({ sluice, jobs: [signup], token: TOKEN }));
    const srv = serve({ fetch: parent.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => srv.once('listening', r));
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      expect(await (await fetch(`${base}/health`)).text()).toBe('ok');
      expect((await fetch(`${base}/ops/queues`)).status).toBe(401);
      const res = await fetch(`${base}/ops/queues/http`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect((await json(res)).queue).toBe('http');
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
