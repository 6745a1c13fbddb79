// packages/sluice/sql/roles.sql, applied as printed by `sluice roles`, then a worker run
// under the runtime role: everything a worker does works, DDL does not.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { z } from 'zod';
import { main } from '../packages/sluice/src/cli/main.js';
import { Sluice, createWorker, defineJob, migrate, queueStatsAll, runMaintenance } from '../packages/sluice/src/index.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

const sfx = randomBytes(3).toString('hex');
const role = { owner: `t_own_${sfx}`, runtime: `t_run_${sfx}`, readonly: `t_ro_${sfx}` };
const login = { app: `t_app_${sfx}`, dash: `t_dash_${sfx}`, migrator: `t_mig_${sfx}` };
const PASSWORD = 'role-test-pw';

let db: TestDb;
const pools: pg.Pool[] = [];

function poolAs(user: string): pg.Pool {
  const u = new URL(db.url);
  u.username = user;
  u.password = PASSWORD;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 4 });
  pool.on('error', () => {});
  pools.push(pool);
  return pool;
}

async function errorCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

beforeAll(async () => {
  db = await createTestDb();
  const out: string[] = [];
  const code = await main(['roles', '--owner', role.owner, '--runtime', role.runtime, '--readonly', role.readonly], (s) => out.push(s), () => {});
  expect(code).toBe(0);
  await db.pool.query(out.join('\n'));
  await db.pool.query(`CREATE ROLE ${login.app} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${role.runtime}`);
  await db.pool.query(`CREATE ROLE ${login.dash} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${role.readonly}`);
  await db.pool.query(`CREATE ROLE ${login.migrator} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${role.owner}`);
  await db.pool.query(`ALTER ROLE ${login.migrator} SET role = '${role.owner}'`);
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db.drop();
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  for (const name of [...Object.values(login), ...Object.values(role)]) await admin.query(`DROP ROLE IF EXISTS ${name}`);
  await admin.end();
});

describe('roles from sql/roles.sql', () => {
  it('hands the schema to the owner role; running the script again changes nothing', async () => {
    const { rows } = await db.pool.query(`SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'sluice'::regnamespace`);
    expect(rows.map((r) => r.owner)).toEqual([role.owner]);
    const out: string[] = [];
    await main(['roles', '--owner', role.owner, '--runtime', role.runtime, '--readonly', role.readonly], (s) => out.push(s), () => {});
    await db.pool.query(out.join('\n'));
  });

  it('a worker runs under the runtime role: enqueue, claim, complete, retry, dead-letter, maintenance', async () => {
    const app = poolAs(login.app);
    const ok = defineJob({ name: 'roles.ok', queue: 'roles', schema: z.object({ n: z.number() }) });
    const flaky = defineJob({ name: 'roles.flaky', queue: 'roles', schema: z.object({}), maxAttempts: 2, backoff: { kind: 'fixed', baseMs: 10, jitter: 0 } });
    const sluice = new Sluice({ pool: app });
    const worker = createWorker({
      pool: app,
      handlers: [ok.handle(async () => {}), flaky.handle(async () => { throw new Error('always'); })],
      pollIntervalMs: 100,
      alertCheckIntervalMs: 100,
    });
    await worker.start();
    try {
      await sluice.enqueueMany(ok, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const flakyId = await sluice.enqueue(flaky, {});
      await waitUntil(async () => (await count(app, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'roles'`)) === 3, { what: 'completions' });
      await waitUntil(async () => (await sluice.getJob(flakyId)).state === 'dead', { what: 'dead job' });
      await sluice.replayDead([flakyId]);
      // Retention: the DDL goes through the owner's functions.
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
      await db.pool.query(`DROP TABLE sluice.job_history_${tomorrow}`);
      const report = await runMaintenance(app);
      expect(report).toMatchObject({ ran: true, partitionsCreated: 1 });
      const { rows } = await db.pool.query(`SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname = $1`, [`job_history_${tomorrow}`]);
      expect(rows[0].owner).toBe(role.owner);
      expect((await queueStatsAll(app, 'roles'))[0]).toMatchObject({ queue: 'roles', workersAlive: 1 });
    } finally {
      await worker.stop();
    }
  });

  it('the runtime role cannot run DDL', async () => {
    const app = poolAs(login.app);
    expect(await errorCode(app.query('CREATE TABLE sluice.intruder (i int)'))).toBe('42501');
    expect(await errorCode(app.query('DROP TABLE sluice.jobs'))).toBe('42501');
    expect(await errorCode(app.query('ALTER TABLE sluice.jobs ADD COLUMN x int'))).toBe('42501');
    expect(await errorCode(app.query('TRUNCATE sluice.jobs'))).toBe('42501');
    expect(await errorCode(app.query(`CREATE FUNCTION sluice.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`))).toBe('42501');
  });

  it('the read-only role reads stats and cannot write or drop partitions', async () => {
    const dash = poolAs(login.dash);
    expect((await queueStatsAll(dash)).some((s) => s.queue === 'roles')).toBe(true);
    expect((await dash.query('SELECT count(*) FROM sluice.job_depth()')).rowCount).toBe(1);
    expect(await errorCode(dash.query(`SELECT sluice.enqueue('x', '{}')`))).toBe('42501');
    expect(await errorCode(dash.query(`DELETE FROM sluice.dead_jobs`))).toBe('42501');
    expect(await errorCode(dash.query(`SELECT sluice.drop_history_partitions(now())`))).toBe('42501');
    expect(await errorCode(dash.query(`SELECT sluice.create_history_partitions(7)`))).toBe('42501');
  });

  it('a migrator login acts as the owner role and can migrate', async () => {
    const mig = poolAs(login.migrator);
    await migrate(mig);
    const { rows } = await mig.query('SELECT current_user AS u');
    expect(rows[0].u).toBe(role.owner);
  });
});
