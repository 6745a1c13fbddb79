// Connections that went silent without closing (a partition, a proxy that
// dropped the flow): the worker's statements on them are given up, and the
// pool's other idle connections, silent too, are not reused for the retry.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { Scheduler } from '../packages/sluice/src/services/scheduler.js';
import { isGivenUp } from '../packages/sluice/src/given-up.js';
import { SilenceGuard } from '../packages/sluice/src/silent-connections.js';
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
    // Its rejection is caught at once: it may come before the terminating call returns.
    const sleeping = guard
      .limited(5_000)
      .query({ text: 'SELECT pg_sleep(5)' })
      .then(
        () => null,
        (err: unknown) => err,
      );
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'`, [rows[0]!.pid])) === 1, {
      what: 'the statement running',
    });
    await db.pool.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    expect(await sleeping).toMatchObject({ code: '57P01' });
    // Back in the pool it would be handed to the next statement, which would fail on it.
    expect(pool.idleCount).toBe(0);
    expect(pool.totalCount).toBe(0);
  });

  it("a background duty's transaction on a silent connection is given up and its connection destroyed; the next one runs", async () => {
    const { pool, proxy } = await warmPoolBehindProxy(1);
    const transaction = new SilenceGuard(pool).transactions(300, 2_000);
    proxy.freeze();
    const stuck = transaction((client) => client.query({ text: 'SELECT 1' }));
    expect(await givenUp(stuck)).toBe(true);
    // The silent connection left the pool (its ROLLBACK would not have been answered either).
    expect(pool.totalCount).toBe(0);
    const result = await transaction((client) => client.query<{ two: number }>({ text: 'SELECT 2 AS two' }));
    expect(result.rows).toEqual([{ two: 2 }]);
  });

  // A scheduler's or maintenance's transaction took whichever connection the
  // pool gave it: after a statement was given up elsewhere, another silent one,
  // for its own bound (a minute in a worker).
  it("after a statement is given up, a duty's transaction does not start on another idle connection opened before", async () => {
    const { pool, proxy } = await warmPoolBehindProxy(3);
    const guard = new SilenceGuard(pool);
    proxy.freeze();
    expect(await givenUp(guard.limited(300).query({ text: 'SELECT 1' }))).toBe(true);
    const result = await guard.transactions(300, 2_000)(async (client) => {
      await client.query({ text: 'SELECT 1' });
      return client.query<{ two: number }>({ text: 'SELECT 2 AS two' });
    });
    expect(result.rows).toEqual([{ two: 2 }]);
    expect(pool.totalCount).toBe(1);
  });

  it('a transaction that failed on the server is rolled back and keeps its connection', async () => {
    const { pool } = await warmPoolBehindProxy(1);
    const transaction = new SilenceGuard(pool).transactions(5_000, 2_000);
    await db.pool.query('CREATE TABLE IF NOT EXISTS guard_rollback (n int)');
    await expect(
      transaction(async (client) => {
        await client.query({ text: 'INSERT INTO guard_rollback VALUES (1)' });
        await client.query({ text: 'SELECT 1/0' });
      }),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await count(db.pool, 'SELECT count(*) n FROM guard_rollback')).toBe(0);
    expect(pool.totalCount).toBe(1);
    // The kept connection is out of the failed transaction.
    const { rows } = await transaction((client) => client.query<{ one: number }>({ text: 'SELECT 1 AS one' }));
    expect(rows).toEqual([{ one: 1 }]);
  });

  // A transaction whose connection froze after it took a lock: the client
  // gives the statement up and destroys its socket, but the server's session
  // waits for the next statement, holding the lock (a history partition's,
  // the due schedules') until TCP keepalive notices, two hours by default.
  it("a duty's transaction whose connection froze mid-transaction lets go of its locks: the server ends it once it sits idle", async () => {
    const { pool, proxy } = await warmPoolBehindProxy(1);
    const transaction = new SilenceGuard(pool).transactions(1_000, 300);
    const stuck = transaction(async (client) => {
      await client.query({ text: `INSERT INTO sluice.queues (name) VALUES ('frozen_probe')` });
      proxy.freeze();
      await client.query({ text: 'SELECT 1' });
    });
    expect(await givenUp(stuck)).toBe(true);
    // The same key from another session waits for the frozen transaction's row lock.
    const other = await db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SET LOCAL lock_timeout = '5s'`);
      await other.query(`INSERT INTO sluice.queues (name) VALUES ('frozen_probe')`);
      await other.query('COMMIT');
    } finally {
      other.release();
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'frozen_probe'`)).toBe(1);
  });

  it('a worker made and never started leaves no listener on the pool its caller keeps', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pools.push(pool);
    const before = { connect: pool.listenerCount('connect'), release: pool.listenerCount('release') };
    const job = defineJob({ name: 'silent.unstarted', queue: 'silent-unstarted', schema: z.object({}) });
    for (let i = 0; i < 3; i++) createWorker({ pool, handlers: [job.handle(() => {})], logger: captureLogs('error').logger });
    expect({ connect: pool.listenerCount('connect'), release: pool.listenerCount('release') }).toEqual(before);
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
    const guard = new SilenceGuard(pool);
    const scheduler = new Scheduler(
      { db: guard.limited(300), transaction: guard.transactions(300, 2_000) },
      { maxSleepMs: 1_000, misfireGraceMs: 3_600_000 },
      captureLogs('error').logger,
    );
    services.push(scheduler);
    scheduler.start();
    const fired = () => count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE tags @> ARRAY['cron:silent-yearly']`);
    await waitUntil(async () => (await fired()) === 1, { timeoutMs: 15_000, what: 'the due schedule fired' });
  });
});
