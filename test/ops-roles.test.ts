// packages/sluice/sql/roles.sql, applied as printed by `sluice roles`, then a worker run
// under the runtime role: everything a worker does works, DDL does not.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { z } from 'zod';
import { main } from '../packages/sluice/src/cli/main.js';
import { queueStatsAll, runMaintenance, type AlertEvent } from '../packages/sluice/src/admin.js';
import { Sluice, createWorker, defineJob, migrate } from '../packages/sluice/src/index.js';
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

  it('a worker runs under the runtime role: enqueue, claim, complete, retry, dead-letter, maintenance, alerts', async () => {
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
    const alerts: AlertEvent[] = [];
    worker.on('alert', (e) => alerts.push(e));
    // Reporting an alert writes sluice.alert_states.
    await db.pool.query(`INSERT INTO sluice.queues (name, alert_no_worker) VALUES ('roles-unserved', true)`);
    await worker.start();
    try {
      await waitUntil(() => alerts.some((e) => e.queue === 'roles-unserved' && e.state === 'firing'), { what: 'alert reported' });
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

  it('each role against each table: exactly the privileges listed, no more', async () => {
    // What the runtime role may write, per table; every role reads every table and view.
    const runtimeWrites: Record<string, string[]> = {
      __migrations: [],
      jobs: ['INSERT', 'UPDATE', 'DELETE'],
      job_history: ['INSERT', 'DELETE'],
      dead_jobs: ['INSERT', 'DELETE'],
      queues: ['INSERT', 'UPDATE'],
      job_types: ['INSERT', 'UPDATE'],
      workers: ['INSERT', 'UPDATE', 'DELETE'],
      cron_schedules: ['INSERT', 'UPDATE', 'DELETE'],
      metrics_minutely: ['INSERT', 'UPDATE', 'DELETE'],
      batches: ['INSERT', 'UPDATE'],
      subscriptions: ['INSERT'],
      dashboard_sessions: ['INSERT', 'DELETE'],
      alert_states: ['INSERT', 'DELETE'],
    };
    // The read-only role's one write: a read-only dashboard signs people in and out.
    const readonlyWrites: Record<string, string[]> = { dashboard_sessions: ['INSERT', 'DELETE'] };
    // PostgreSQL 17 added MAINTAIN (VACUUM, ANALYZE, CLUSTER, REINDEX, LOCK TABLE): the owner's alone.
    const { rows: version } = await db.pool.query<{ n: number }>(`SELECT current_setting('server_version_num')::int AS n`);
    const privileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', ...(version[0]!.n >= 170000 ? ['MAINTAIN'] : [])];
    const { rows: tables } = await db.pool.query<{ name: string; kind: string; partition: boolean }>(
      `SELECT relname AS name, relkind::text AS kind, relispartition AS partition FROM pg_class
       WHERE relnamespace = 'sluice'::regnamespace AND relkind IN ('r', 'p', 'v', 'm') ORDER BY relname`,
    );
    // A table nobody classified fails here: its grants must be decided, not inherited.
    const unlisted = tables.filter((t) => t.kind !== 'v' && !t.partition && !(t.name in runtimeWrites) && !t.name.startsWith('__'));
    expect(unlisted.map((t) => t.name)).toEqual([]);
    const { rows } = await db.pool.query<{ name: string; role: string; privilege: string; granted: boolean }>(
      `SELECT t.name, r.role, p.privilege, has_table_privilege(r.role, format('sluice.%I', t.name), p.privilege) AS granted
       FROM unnest($1::text[]) t(name), unnest($2::text[]) r(role), unnest($3::text[]) p(privilege)`,
      [tables.map((t) => t.name), [role.owner, role.runtime, role.readonly], privileges],
    );
    const wrong = rows.filter((r) => {
      const table = tables.find((t) => t.name === r.name)!;
      const expected =
        r.role === role.owner ||
        r.privilege === 'SELECT' ||
        (r.role === role.runtime && table.kind !== 'v' && !table.partition && (runtimeWrites[r.name] ?? []).includes(r.privilege)) ||
        (r.role === role.readonly && (readonlyWrites[r.name] ?? []).includes(r.privilege));
      return r.granted !== expected;
    });
    expect(wrong).toEqual([]);
    // Identity sequences: the runtime role draws ids only for tables it inserts into.
    const seq = (name: string, r: string) =>
      db.pool.query<{ ok: boolean }>(`SELECT has_sequence_privilege($1, $2, 'USAGE') AS ok`, [r, `sluice.${name}`]).then((x) => x.rows[0]!.ok);
    expect(await seq('jobs_id_seq', role.runtime)).toBe(true);
    expect(await seq('__migrations_id_seq', role.runtime)).toBe(false);
    expect(await seq('jobs_id_seq', role.readonly)).toBe(false);
  });

  it('the migration journal is the owner\'s: the runtime and read-only logins cannot touch it, so migrate keeps working', async () => {
    const tooNew = `INSERT INTO sluice.__migrations (hash, created_at) VALUES ('bogus', 9999999999999)`;
    for (const pool of [poolAs(login.app), poolAs(login.dash)]) {
      expect((await pool.query('SELECT count(*) AS n FROM sluice.__migrations')).rows[0].n).not.toBe('0');
      expect(await errorCode(pool.query(tooNew))).toBe('42501');
      expect(await errorCode(pool.query(`UPDATE sluice.__migrations SET created_at = 9999999999999`))).toBe('42501');
      expect(await errorCode(pool.query(`DELETE FROM sluice.__migrations`))).toBe('42501');
      expect(await errorCode(pool.query(`SELECT setval('sluice.__migrations_id_seq', 1)`))).toBe('42501');
    }
    // Writes the runtime role has no use for are refused too.
    const app = poolAs(login.app);
    expect(await errorCode(app.query(`UPDATE sluice.dead_jobs SET attempt = 0`))).toBe('42501');
    expect(await errorCode(app.query(`DELETE FROM sluice.queues`))).toBe('42501');
    expect(await errorCode(app.query(`DELETE FROM sluice.subscriptions`))).toBe('42501');
    // A partition of job_history, named through pg_inherits: a name pattern also matches the
    // partitions' indexes, and DELETE from an index is refused as the wrong kind of object (42809).
    const { rows } = await db.pool.query<{ relname: string }>(
      `SELECT relname FROM pg_class WHERE oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'sluice.job_history'::regclass) ORDER BY relname LIMIT 1`,
    );
    expect(await errorCode(app.query(`DELETE FROM sluice.${rows[0]!.relname}`))).toBe('42501');
    // The owner may write its journal (rolled back here), and migrate still runs.
    const mig = await poolAs(login.migrator).connect();
    try {
      await mig.query('BEGIN');
      await mig.query(tooNew);
      await mig.query('ROLLBACK');
    } finally {
      mig.release();
    }
    await migrate(poolAs(login.migrator));
  });

  it('SECURITY DEFINER functions: only the listed ones, run by the runtime role and not by the read-only role', async () => {
    const { rows } = await db.pool.query<{ name: string; runtime: boolean; readonly: boolean }>(
      `SELECT p.proname AS name, has_function_privilege($1, p.oid, 'EXECUTE') AS runtime, has_function_privilege($2, p.oid, 'EXECUTE') AS readonly
       FROM pg_proc p WHERE p.pronamespace = 'sluice'::regnamespace AND p.prosecdef ORDER BY p.proname`,
      [role.runtime, role.readonly],
    );
    expect(rows).toEqual([
      { name: 'create_history_partitions', runtime: true, readonly: false },
      { name: 'drop_history_partitions', runtime: true, readonly: false },
      // Reads pg_statistic for estimates; writes nothing.
      { name: 'mcv_estimates', runtime: true, readonly: true },
    ]);
  });

  it('a migrator login acts as the owner role and can migrate', async () => {
    const mig = poolAs(login.migrator);
    await migrate(mig);
    const { rows } = await mig.query('SELECT current_user AS u');
    expect(rows[0].u).toBe(role.owner);
  });
});
