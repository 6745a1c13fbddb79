import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHttpApi, startHttpApi, type HttpApiServer } from '../packages/sluice/src/http/index.js';
import { Sluice, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';
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

  it('never logs payloads', () => {
    expect(logs.raw.join('')).not.toContain(SECRET);
  });

  it('is off unless created, and refuses a short token', () => {
    expect(() => createHttpApi({ sluice, jobs: [signup], token: 'short' })).toThrow(/httpApi\.token/);
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
