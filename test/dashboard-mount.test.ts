// The dashboard mounted under a path prefix in a host application, exactly as
// docs/dashboard.md shows it: in Hono, in Express and in Fastify. Each host
// keeps its own routes; the dashboard's links, cookies and forms stay under
// the prefix; sign-in and a CSRF-protected action work through the host.
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, toNodeListener } from '../packages/dashboard/src/index.js';
import { Sluice } from '../packages/sluice/src/index.js';
import { DashboardClient } from './fixtures/dashboard-http.js';
import { seedDashboard } from './fixtures/dashboard-seed.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';

const TOKEN = 'mount-token-0123456789abcdef';
const PREFIX = '/admin/jobs';

let db: TestDb;
let sluice: Sluice;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await seedDashboard(sluice, db.pool);
});
afterAll(async () => {
  for (const close of closers) await close();
  await db?.drop();
});

const dashboard = () => createDashboard({ sluice, auth: { token: TOKEN }, basePath: PREFIX });

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

async function exercise(origin: string, queue: string): Promise<void> {
  // The host's own route is untouched by the dashboard's sign-in.
  const home = await fetch(`${origin}/`);
  expect(await home.text()).toBe('host app');

  const client = new DashboardClient(origin);
  const first = await client.get(`${PREFIX}/jobs`);
  expect(first.status).toBe(303);
  expect(first.headers.get('location')).toBe(`${PREFIX}/login?next=${encodeURIComponent(`${PREFIX}/jobs`)}`);
  expect((await client.signIn({ token: 'wrong-token-0123456789abcdef' }, PREFIX)).status).toBe(401);
  const signIn = await client.signIn({ token: TOKEN }, PREFIX);
  expect(signIn.status).toBe(303);
  expect(signIn.headers.get('location')).toBe(`${PREFIX}/`);
  expect(signIn.headers.get('set-cookie')).toContain(`Path=${PREFIX}`);

  const page = await client.get(`${PREFIX}/`);
  expect(page.status).toBe(200);
  const html = await page.text();
  const links = [...html.matchAll(/(?:href|action|src)="(\/[^"]*)"/g)].map((m) => m[1]!);
  expect(links.length).toBeGreaterThan(10);
  for (const link of links) expect(link.startsWith(`${PREFIX}/`), link).toBe(true);
  expect((await client.get(`${PREFIX}/assets/dashboard.js`)).status).toBe(200);

  const csrf = await client.csrf(`${PREFIX}/queues`);
  const paused = await client.post(`${PREFIX}/queues/${queue}/pause`, { _csrf: csrf });
  expect(paused.status).toBe(303);
  expect(paused.headers.get('location')).toBe(`${PREFIX}/queues?ok=paused`);
  expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = $1 AND paused`, [queue])).toBe(1);
  expect((await client.post(`${PREFIX}/queues/${queue}/resume`, {})).status).toBe(403);
  await sluice.queues.resume(queue);
}

describe('mounted under a path prefix', () => {
  it('in Hono: app.route("/", dashboard)', async () => {
    const host = new Hono();
    host.get('/', (c) => c.text('host app'));
    host.route('/', dashboard());
    const server = serve({ fetch: host.fetch, port: 0, hostname: '127.0.0.1' });
    closers.push(() => new Promise((r) => server.close(() => r())));
    await new Promise((r) => server.once('listening', r));
    await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'emails');
  });

  it('in Express: app.use(prefix, toNodeListener(dashboard))', async () => {
    const app = express();
    app.use(PREFIX, toNodeListener(dashboard()));
    // The host's own body parser comes after the dashboard, so it does not consume its forms.
    app.use(express.urlencoded({ extended: false }));
    app.get('/', (_req, res) => void res.send('host app'));
    const server = createServer(app);
    closers.push(() => new Promise((r) => server.close(() => r())));
    await exercise(await listen(server), 'reports');
  });

  it('in Fastify: a prefixed plugin that hands the raw request over', async () => {
    const app = Fastify();
    app.get('/', async () => 'host app');
    const listener = toNodeListener(dashboard());
    await app.register(
      async (scope) => {
        // Leave request bodies unread: the dashboard reads its own forms.
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_req: FastifyRequest, _body: unknown, done: (err: null) => void) => done(null));
        const handler = (req: FastifyRequest, reply: FastifyReply) => {
          reply.hijack();
          void listener(req.raw, reply.raw);
        };
        scope.all('/', handler);
        scope.all('/*', handler);
      },
      { prefix: PREFIX },
    );
    const origin = await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    await exercise(origin, 'bulk');
  });
});
