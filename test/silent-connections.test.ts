// Connections that went silent without closing (a partition, a proxy that
// dropped the flow): the worker's statements on them are given up, and the
// pool's other idle connections, silent too, are not reused for the retry.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { z } from 'zod';
import { Sluice, defineJob } from '../packages/sluice/src/index.js';
import { Scheduler } from '../packages/sluice/src/services/scheduler.js';
import { SilenceGuard, isGivenUp } from '../packages/sluice/src/silent-connections.js';
import { inTransaction } from '../packages/sluice/src/transaction.js';
import { CuttableProxy } from './helpers/cuttable-proxy.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';

let db: TestDb;
const proxies: CuttableProxy[] = [];
const pools: pg.Pool[] = [];
const services: Scheduler[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterEach(async () => {
  await Promise.all(services.splice(0).map((x) => x.stop()));
  for (const p of proxies.splice(0)) await p.close();
  await Promise.all(pools.splice(0).map((p) => p.end().catch(() => {})));
});
afterAll(async () => {
  await db.drop();
});

/** A pool through a proxy, with `idle` connections open and idle in it. */
async function warmPoolBehindProxy(idle: number): Promise<{ pool: pg.Pool; proxy: CuttableProxy }> {
  const proxy = new CuttableProxy(new URL(db.url));
  await proxy.start();
  proxies.push(proxy);
  const pool = new pg.Pool({ connectionString: proxy.url(), max: idle });
  pool.on('error', () => {});
  pools.push(pool);
  await Promise.all(Array.from({ length: idle }, () => pool.query('SELECT pg_sleep(0.05)')));
  expect(pool.idleCount).toBe(idle);
  return { pool, proxy };
}

async function givenUp(statement: Promise<unknown>): Promise<boolean> {
  return statement.then(
    () => false,
    (err) => {
      if (isGivenUp(err)) return true;
      throw err;
    },
  );
}

describe('a pool whose connections went silent', () => {
  it('after a statement is given up, the retry does not land on another idle connection opened before it went silent', async () => {
    const { pool, proxy } = await warmPoolBehindProxy(4);
    const guard = new SilenceGuard(pool);
    const limited = guard.limited(300);
    proxy.freeze();
    expect(await givenUp(limited.query({ text: 'SELECT 1 AS one' }))).toBe(true);
    // Three idle connections are as silent as the one given up: each would
    // take the retry for another bound. The retry opens a new one instead.
    const { rows } = await limited.query<{ one: number }>({ text: 'SELECT 1 AS one' });
    expect(rows).toEqual([{ one: 1 }]);
    expect(pool.totalCount).toBe(1);
  });

  it('a statement that failed on the server keeps its connection, and nothing given up evicts the rest', async () => {
    const { pool } = await warmPoolBehindProxy(2);
    const guard = new SilenceGuard(pool);
    const limited = guard.limited(5_000);
    const pids = new Set<number>();
    for (let i = 0; i < 4; i++) {
      await expect(limited.query({ text: 'SELECT 1/0' })).rejects.toMatchObject({ code: '22012' });
      const { rows } = await limited.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' });
      pids.add(rows[0]!.pid);
    }
    // The two connections warmed before are the only ones ever used.
    expect(pids.size).toBeLessThanOrEqual(2);
    expect(pool.totalCount).toBe(2);
  });

  it('a connection that answered someone else (a handler on the shared pool) after a statement was given up is kept', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pools.push(pool);
    const guard = new SilenceGuard(pool);
    // Two connections open before the give-up: one takes it, the handler uses the other.
    await Promise.all([1, 2].map(() => pool.query('SELECT pg_sleep(0.05)')));
    // Given up for want of an answer in time: a slow statement stands in for a silent connection.
    expect(await givenUp(guard.limited(100).query({ text: 'SELECT pg_sleep(2)' }))).toBe(true);
    const handler = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const { rows } = await guard.limited(5_000).query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' });
    expect(rows[0]!.pid).toBe(handler.rows[0]!.pid);
    expect(pool.totalCount).toBe(1);
  });

  it('a statement whose session the server ended (a terminated backend) does not give its connection back to the pool', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('error', () => {});
    pools.push(pool);
    const guard = new SilenceGuard(pool);
    const { rows } = await guard.limited(5_000).query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid' });
    const sleeping = guard.limited(5_000).query({ text: 'SELECT pg_sleep(5)' });
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'`, [rows[0]!.pid])) === 1, {
      what: 'the statement running',
    });
    await db.pool.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    await expect(sleeping).rejects.toMatchObject({ code: '57P01' });
    // Back in the pool it would be handed to the next statement, which would fail on it.
    expect(pool.idleCount).toBe(0);
    expect(pool.totalCount).toBe(0);
  });

  it("a background duty's transaction on a silent connection is given up and its connection destroyed; the next one runs", async () => {
    const { pool, proxy } = await warmPoolBehindProxy(1);
    proxy.freeze();
    const stuck = inTransaction(pool, undefined, (client) => client.query({ text: 'SELECT 1' }), 300);
    expect(await givenUp(stuck)).toBe(true);
    // The silent connection left the pool (its ROLLBACK would not have been answered either).
    expect(pool.totalCount).toBe(0);
    const result = await inTransaction(pool, undefined, (client) => client.query<{ two: number }>({ text: 'SELECT 2 AS two' }), 300);
    expect(result.rows).toEqual([{ two: 2 }]);
  });

  // A leader's duty unbounded on a silent connection held it, and its duty,
  // forever: with the leader's LISTEN session alive, no other worker took over.
  it("a scheduler whose pool connection went silent gives its round up and fires the due schedule on a new connection", async () => {
    const sluice = new Sluice({ pool: db.pool });
    const job = defineJob({ name: 'silent.cron', queue: 'silent-cron', schema: z.object({}) });
    // Yearly, made due by hand: one fire, whatever minute the test runs across.
    await sluice.schedules.add({ name: 'silent-yearly', cron: '0 0 1 1 *', job, payload: {} });
    await db.pool.query(`UPDATE sluice.cron_schedules SET next_run_at = date_trunc('minute', now()) - interval '1 minute' WHERE name = 'silent-yearly'`);
    const { pool, proxy } = await warmPoolBehindProxy(1);
    proxy.freeze();
    const scheduler = new Scheduler(
      { pool, db: new SilenceGuard(pool).limited(300), giveUpMs: 300 },
      { maxSleepMs: 1_000, misfireGraceMs: 3_600_000, idleInTransactionMs: 2_000 },
      captureLogs('error').logger,
    );
    services.push(scheduler);
    scheduler.start();
    const fired = () => count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE tags @> ARRAY['cron:silent-yearly']`);
    await waitUntil(async () => (await fired()) === 1, { timeoutMs: 15_000, what: 'the due schedule fired' });
  });
});
