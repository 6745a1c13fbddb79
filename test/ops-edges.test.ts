// Operations figures at their edges: an error rate equal to its alert
// threshold, a replayed dead job in the throughput, a write transaction left
// idle (an xid but no xmin) in the doctor, and partition bounds read under a
// non-ISO DateStyle. Each states what the tables say and what the figure or
// report must then be.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertListActive, runMaintenance } from '../packages/sluice/src/admin.js';
import { doctorChecks } from '../packages/sluice/src/sql/maintenance.js';
import { createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('alerts', () => {
  it('error_rate does not fire when the rate equals the threshold (9 of 10 failed, threshold 0.9)', async () => {
    await q(`SELECT sluice.queue_configure('edge-err', '{"alert_max_error_rate": 0.9}')`);
    // Shard 64: no backend writes there.
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed, failed) VALUES ('edge-err', date_trunc('minute', now()), 64, 1, 9)`);
    const { rows } = await q(`SELECT error_rate_5m FROM sluice.queue_throughput WHERE queue = 'edge-err'`);
    expect(rows[0].error_rate_5m).toBe(0.9);
    const alerts = (await alertListActive(db.pool, 15_000)).filter((a) => a.queue === 'edge-err');
    // "error_rate: failed / (completed + failed) ... > alert_max_error_rate": 0.9 is not over 0.9.
    expect(alerts.map((a) => a.message)).toEqual([]);
  });
});

describe('metrics', () => {
  it('a replayed dead job is counted as enqueued again, as every other way into the queue is', async () => {
    const { rows: e } = await q(`SELECT sluice.enqueue('zz.r', '{}', queue => 'zz-replay') AS id`);
    const id = Number(e[0].id);
    await q(`UPDATE sluice.jobs SET state = 'running', locked_by = 'w-zz', locked_until = now() + interval '1 min', attempt = 1, attempted_at = now() WHERE id = $1`, [id]);
    await q(`SELECT * FROM sluice.job_fail_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"kind":"error","message":"x"}'::jsonb], ARRAY[true])`, [id]);
    const rate = async () => (await q(`SELECT enqueued_5m::int AS n, dead_5m::int AS d FROM sluice.queue_throughput WHERE queue = 'zz-replay'`)).rows[0];
    expect(await rate()).toEqual({ n: 1, d: 1 });
    await q(`SELECT sluice.dead_replay(ARRAY[$1::bigint])`, [id]);
    expect((await q(`SELECT state FROM sluice.jobs WHERE id = $1`, [id])).rows[0].state).toBe('available');
    // One job went into the queue twice (enqueue, replay): the queue's inflow is 2.
    expect(await rate()).toEqual({ n: 2, d: 1 });
  });
});

describe('doctor', () => {
  it('long_xact reports a write transaction left idle (it holds an xid, not an xmin) that holds back vacuum', async () => {
    const idle = new pg.Client({ connectionString: db.url });
    await idle.connect();
    try {
      await idle.query('BEGIN');
      await idle.query('SELECT txid_current()'); // any write does the same: the transaction gets an xid
      const { rows: me } = await idle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = me[0]!.pid;
      await sleep(1_500);
      // It does hold back vacuum: rows deleted now stay as dead rows after VACUUM.
      await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed)
               SELECT 'zz-held', timestamptz '2020-01-01' + k * interval '1 minute', 0, k FROM generate_series(1, 500) k`);
      await q(`DELETE FROM sluice.metrics_minutely WHERE queue = 'zz-held'`);
      await q(`VACUUM sluice.metrics_minutely`);
      const { rows: left } = await q(
        `SELECT pg_stat_clear_snapshot(), (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'sluice.metrics_minutely'::regclass)::int AS dead`,
      );
      expect(left[0].dead).toBeGreaterThanOrEqual(500);
      const { rows: act } = await q(`SELECT backend_xid IS NOT NULL AS has_xid, backend_xmin IS NULL AS no_xmin FROM pg_stat_activity WHERE pid = $1`, [pid]);
      expect(act[0]).toEqual({ has_xid: true, no_xmin: true });

      const checks = await doctorChecks(db.pool, 1_000);
      const mine = checks.filter((c) => c.check === 'long_xact' && c.subject.includes(`pid ${pid} `));
      expect(mine.map((c) => c.status)).toEqual(['warn']);
    } finally {
      await idle.query('ROLLBACK').catch(() => {});
      await idle.end();
    }
  });

  it('partitions: a session with DateStyle SQL and a zone whose abbreviation is ambiguous (Asia/Kolkata, IST) still sees today\'s partition', async () => {
    await runMaintenance(db.pool);
    const c = new pg.Client({ connectionString: db.url, options: '-c DateStyle=SQL,DMY -c TimeZone=Asia/Kolkata' });
    await c.connect();
    try {
      const checks = await doctorChecks(c, 300_000);
      const partitions = checks.filter((x) => x.check === 'partitions');
      expect(partitions.map((x) => [x.status, x.detail])).toEqual([['ok', 'partitions exist for today and the next 2 days']]);
      // The partition bounds as sluice reads them: today's starts at 00:00 UTC.
      const { rows } = await c.query(
        `SELECT extract(epoch FROM range_from)::bigint * 1000 AS from_ms FROM sluice.history_partitions()
         WHERE partition = 'job_history_' || to_char((now() AT TIME ZONE 'UTC')::date, 'YYYYMMDD')`,
      );
      const today = new Date();
      expect(Number(rows[0].from_ms)).toBe(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()));
    } finally {
      await c.end();
    }
  });
});
