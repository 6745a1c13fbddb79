import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { Maintenance, deadPurge, runMaintenance } from '../packages/sluice/src/admin.js';
import { RETENTION_MS_MAX } from '../packages/sluice/src/config.js';
import { doctorChecks } from '../packages/sluice/src/sql/maintenance.js';
import { sluiceCli } from './helpers/cli.js';
import { captureLogs } from './helpers/log-capture.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

const burstJob = defineJob({ name: 'doctor.burst', queue: 'doctor-burst', schema: z.object({ n: z.number() }) });

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);
const utcDay = (offsetDays: number) => new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + offsetDays));
const partName = (d: Date) => `job_history_${d.toISOString().slice(0, 10).replaceAll('-', '')}`;

async function history(id: number, queue: string, finishedAgo: string): Promise<void> {
  await q(
    `INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, created_at, run_at, attempted_at, finished_at)
     VALUES ($1, $2, 'h', '{}', 0, 1, 1, 'completed', now(), now(), now(), now() - $3::interval)`,
    [id, queue, finishedAgo],
  );
}

describe('retention', () => {
  it('creates missing partitions ahead and drops day partitions past every queue retention', async () => {
    // Settled first: a suite started before midnight UTC lacks the new day's
    // partition ahead, which this round would count too.
    await runMaintenance(db.pool);
    const ahead = partName(utcDay(3));
    await q(`DROP TABLE sluice.${ahead}`);
    const old = utcDay(-30);
    await q(`CREATE TABLE sluice.${partName(old)} PARTITION OF sluice.job_history FOR VALUES FROM ('${old.toISOString()}') TO ('${utcDay(-29).toISOString()}')`);
    await q(`INSERT INTO sluice.queues (name, retention_ms) VALUES ('keep-long', $1)`, [40 * 86_400_000]);
    await history(1, 'keep-long', '30 days');

    // One queue keeps 40 days: the 30-day-old partition must stay.
    let report = await runMaintenance(db.pool);
    expect(report.ran).toBe(true);
    expect(report.partitionsCreated).toBe(1);
    expect(report.partitionsDropped).toEqual([]);
    const names = (await db.pool.query<{ partition: string }>(`SELECT partition FROM sluice.history_partitions()`)).rows.map((p) => p.partition);
    expect(names).toContain(ahead);
    expect(names).toContain(partName(old));

    await q(`UPDATE sluice.queues SET retention_ms = $1 WHERE name = 'keep-long'`, [7 * 86_400_000]);
    report = await runMaintenance(db.pool);
    expect(report.partitionsDropped).toEqual([partName(old)]);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = 1`)).toBe(0);
    // Yesterday's and today's partitions are within retention.
    const after = (await db.pool.query<{ partition: string }>(`SELECT partition FROM sluice.history_partitions()`)).rows.map((p) => p.partition);
    expect(after).toContain(partName(utcDay(0)));
    expect(after).not.toContain(partName(old));
  });

  it('deletes rows of a queue with a shorter retention and leaves other queues alone', async () => {
    await q(`INSERT INTO sluice.queues (name, retention_ms) VALUES ('short', 60000), ('normal', 604800000)`);
    await history(10, 'short', '5 minutes');
    await history(11, 'short', '10 seconds');
    await history(12, 'normal', '5 minutes');
    const report = await runMaintenance(db.pool, { batchSize: 1 });
    expect(report.historyRowsDeleted).toBe(1);
    const { rows } = await q(`SELECT id FROM sluice.job_history WHERE id BETWEEN 10 AND 12 ORDER BY id`);
    expect(rows.map((r) => Number(r.id))).toEqual([11, 12]);
  });

  it('a retention past the client limit is pruned at RETENTION_MS_MAX, the cap prune_history holds to', async () => {
    const day = 86_400_000;
    await q(`INSERT INTO sluice.queues (name, retention_ms) VALUES ('past-cap', $1)`, [RETENTION_MS_MAX * 2]);
    try {
      await history(20, 'past-cap', `${RETENTION_MS_MAX + day} milliseconds`);
      await history(21, 'past-cap', `${RETENTION_MS_MAX - day} milliseconds`);
      expect(await runMaintenance(db.pool)).toMatchObject({ historyRowsDeleted: 1, partitionsDropped: [] });
      const { rows } = await q(`SELECT id FROM sluice.job_history WHERE queue = 'past-cap'`);
      expect(rows.map((r) => Number(r.id))).toEqual([21]);
    } finally {
      // The later tests drop partitions and find the default one empty.
      await q(`DELETE FROM sluice.job_history WHERE queue = 'past-cap'`);
      await q(`DELETE FROM sluice.queues WHERE name = 'past-cap'`);
    }
  });

  it('purges metrics older than the metrics retention', async () => {
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed) VALUES
             ('m', date_trunc('minute', now()) - interval '20 days', 0, 1),
             ('m', date_trunc('minute', now()) - interval '2 days', 0, 1),
             ('m', date_trunc('minute', now()), 0, 1)`);
    const report = await runMaintenance(db.pool, { metricsRetentionMs: 7 * 86_400_000 });
    expect(report.metricsRowsDeleted).toBe(1);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.metrics_minutely WHERE queue = 'm'`)).toBe(2);
  });

  it('a partition drop held up by a lock on the history table does not stop the row and metrics pruning', async () => {
    const old = utcDay(-40);
    await q(`CREATE TABLE sluice.${partName(old)} PARTITION OF sluice.job_history FOR VALUES FROM ('${old.toISOString()}') TO ('${utcDay(-39).toISOString()}')`);
    await q(`INSERT INTO sluice.queues (name, retention_ms) VALUES ('short2', 60000)`);
    await history(30, 'short2', '5 minutes');
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed) VALUES ('m2', date_trunc('minute', now()) - interval '30 days', 0, 1)`);
    // A long report reading the history table holds a lock the drop must wait for.
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM sluice.job_history');
      await expect(runMaintenance(db.pool)).rejects.toThrow(/lock timeout/);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = 30`)).toBe(0);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.metrics_minutely WHERE queue = 'm2'`)).toBe(0);
    } finally {
      await reader.query('ROLLBACK');
      await reader.end();
    }
    expect((await runMaintenance(db.pool)).partitionsDropped).toContain(partName(old));
  });

  it('a partition creation held up by a lock on the history table does not stop the row and metrics pruning', async () => {
    // Settled first: only the partition dropped below is missing.
    await runMaintenance(db.pool);
    const ahead = partName(utcDay(2));
    await q(`DROP TABLE sluice.${ahead}`);
    await q(`INSERT INTO sluice.queues (name, retention_ms) VALUES ('short3', 60000)`);
    await history(40, 'short3', '5 minutes');
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed) VALUES ('m3', date_trunc('minute', now()) - interval '30 days', 0, 1)`);
    // As pg_dump does: a lock on the history table that attaching a partition must wait for.
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    // The creation gives up a lock wait at its own 2 s lock timeout without failing (it leaves
    // the day for the next round); a statement timeout shorter than that, as many roles
    // have, cancels it with an error.
    const impatient = new pg.Pool({ connectionString: db.url, statement_timeout: 1_000 });
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM sluice.job_history');
      await expect(runMaintenance(impatient)).rejects.toThrow(/statement timeout/);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = 40`)).toBe(0);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.metrics_minutely WHERE queue = 'm3'`)).toBe(0);
    } finally {
      await impatient.end();
      await reader.query('ROLLBACK');
      await reader.end();
    }
    expect(await runMaintenance(db.pool)).toMatchObject({ ran: true, partitionsCreated: 1 });
    expect((await db.pool.query<{ partition: string }>(`SELECT partition FROM sluice.history_partitions()`)).rows.map((p) => p.partition)).toContain(ahead);
  });

  it('one process at a time: a second one skips the round', async () => {
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [0x736c75696d74]);
      expect((await runMaintenance(db.pool)).ran).toBe(false);
      await other.query('SELECT pg_advisory_unlock($1)', [0x736c75696d74]);
      expect((await runMaintenance(db.pool)).ran).toBe(true);
    } finally {
      await other.end();
    }
  });

  it('dead jobs stay until purged; purge needs a filter', async () => {
    await q(`INSERT INTO sluice.dead_jobs (id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
               backoff_factor, backoff_max_ms, backoff_jitter, reason, created_at, run_at, died_at)
             SELECT 500 + k, CASE WHEN k <= 3 THEN 'dq1' ELSE 'dq2' END, 'd', '{}', 0, 1, 1, 'fixed', 0, 1, 0, 0, 'exhausted',
               now(), now(), now() - k * interval '1 day'
             FROM generate_series(1, 6) k`);
    await runMaintenance(db.pool);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs`)).toBe(6);
    await expect(deadPurge(db.pool, {})).rejects.toThrow(/give a queue/);
    expect(await deadPurge(db.pool, { queue: 'dq1', olderThanMs: 2.5 * 86_400_000 })).toBe(1);
    expect(await deadPurge(db.pool, { ids: [504, 999] })).toBe(1);
    expect(await deadPurge(db.pool, { queue: 'dq2' })).toBe(2);
    expect(await deadPurge(db.pool, { all: true })).toBe(2);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs`)).toBe(0);
  });
});

// A round deletes at most 100 batches a table; shown with batches of one row.
describe('retention with more expired rows than one round deletes', () => {
  async function expiredRows(queue: string, firstId: number, n: number): Promise<void> {
    await q(`INSERT INTO sluice.queues (name, retention_ms) VALUES ($1, 60000)`, [queue]);
    await q(
      `INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, created_at, run_at, attempted_at, finished_at)
       SELECT g, $1, 'h', '{}', 0, 1, 1, 'completed', now(), now(), now(), now() - interval '5 minutes' FROM generate_series($2::bigint, $3::bigint) g`,
      [queue, firstId, firstId + n - 1],
    );
  }
  const left = (queue: string) => count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = $1`, [queue]);

  it('a round stopped at its limit with history or metrics rows left reports a backlog; the round that ends it does not', async () => {
    await expiredRows('backlog-report', 2001, 150);
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed)
             SELECT 'backlog-m', date_trunc('minute', now()) - interval '30 days' - k * interval '1 minute', 0, 1 FROM generate_series(1, 150) k`);
    const metricsLeft = () => count(db.pool, `SELECT count(*) n FROM sluice.metrics_minutely WHERE queue = 'backlog-m'`);

    expect(await runMaintenance(db.pool, { batchSize: 1 })).toMatchObject({ ran: true, historyRowsDeleted: 100, metricsRowsDeleted: 100, backlog: true });
    expect(await left('backlog-report')).toBe(50);
    expect(await metricsLeft()).toBe(50);
    expect(await runMaintenance(db.pool, { batchSize: 1 })).toMatchObject({ ran: true, backlog: false });
    expect(await left('backlog-report')).toBe(0);
    expect(await metricsLeft()).toBe(0);
  });

  it('the maintenance service keeps deleting expired rows until none is left, rather than sleeping an hour on a full round', async () => {
    await expiredRows('backlog-hot', 3001, 150);
    // As the leader runs it: hourly.
    const maintenance = new Maintenance(db.pool, { intervalMs: 3_600_000, batchSize: 1 }, captureLogs().logger);
    maintenance.start();
    try {
      await waitUntil(async () => (await left('backlog-hot')) < 150, { what: 'the first round' });
      // The rest within the next rounds, not at the next hourly one.
      await waitUntil(async () => (await left('backlog-hot')) === 0, { what: 'the rest of the backlog' });
    } finally {
      await maintenance.stop();
    }
  });
});

describe('doctor', () => {
  it('all ok on a healthy database', async () => {
    const checks = await doctorChecks(db.pool, 300_000);
    expect(checks.map((c) => [c.check, c.status])).toEqual([
      ['dead_tuples', 'ok'],
      ['bloat', 'ok'],
      ['partitions', 'ok'],
      ['long_xact', 'ok'],
    ]);
  });

  it('reports a missing partition and rows in the default one', async () => {
    const tomorrow = partName(utcDay(1));
    await q(`DROP TABLE sluice.${tomorrow}`);
    await q(`INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, created_at, run_at, finished_at)
             VALUES (7777, 'x', 'x', '{}', 0, 1, 1, 'completed', now(), now(), now() + interval '3 years')`);
    const warns = (await doctorChecks(db.pool, 300_000)).filter((c) => c.status === 'warn');
    expect(warns.map((w) => w.check)).toEqual(['partitions', 'partitions']);
    expect(warns[0]!.detail).toContain(utcDay(1).toISOString().slice(0, 10));
    expect(warns[1]!.subject).toBe('sluice.job_history_default');
    await q(`DELETE FROM sluice.job_history WHERE id = 7777`);
    await runMaintenance(db.pool);
    expect((await doctorChecks(db.pool, 300_000)).filter((c) => c.check === 'partitions')[0]!.status).toBe('ok');
  });

  it('reports a transaction holding back vacuum', async () => {
    const idle = new pg.Client({ connectionString: db.url });
    await idle.connect();
    try {
      await idle.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await idle.query('SELECT count(*) FROM sluice.queues');
      const { rows } = await idle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // Other databases on the same server may hold old transactions too: look for this one's.
      const mine = (c: { check: string; status: string; subject: string }) => c.check === 'long_xact' && c.status === 'warn' && c.subject.includes(`pid ${rows[0]!.pid} `);
      const warn = await waitUntil(async () => (await doctorChecks(db.pool, 1_000)).find(mine), { what: 'long_xact warning' });
      expect(warn.subject).toContain(`pid ${rows[0]!.pid}`);
      expect(warn.detail).toContain(`pg_terminate_backend(${rows[0]!.pid})`);
    } finally {
      await idle.query('ROLLBACK');
      await idle.end();
    }
  });

  it('after a burst of jobs drained, exits 0: the dead rows it left are named, not warned about', async () => {
    const burst = await createTestDb();
    const sluice = new Sluice({ pool: burst.pool });
    const worker = createWorker({ connectionString: burst.url, handlers: [burstJob.handle(() => {})], concurrency: 50, pollIntervalMs: 100, runScheduler: false });
    try {
      for (let i = 0; i < 10; i++) await sluice.enqueueMany(burstJob, Array.from({ length: 1_000 }, (_, n) => ({ n })));
      await worker.start();
      await waitUntil(async () => (await count(burst.pool, `SELECT count(*) n FROM sluice.jobs`)) === 0, { timeoutMs: 120_000, what: 'the burst drained' });
      // What the statistics show once the workers' counters are in: far more dead rows than
      // live ones, the figures the doctor used to warn about.
      await waitUntil(
        async () => (await count(burst.pool, `SELECT n_dead_tup n FROM pg_stat_user_tables WHERE relid = 'sluice.jobs'::regclass`)) > 10_000,
        { what: 'the dead rows counted' },
      );
      const r = await sluiceCli(['doctor', '--json'], { DATABASE_URL: burst.url });
      expect(JSON.parse(r.stdout).checks.filter((c: { status: string }) => c.status === 'warn')).toEqual([]);
      expect(r.code).toBe(0);
      const dead = JSON.parse(r.stdout).checks.find((c: { check: string }) => c.check === 'dead_tuples');
      expect(dead).toMatchObject({ status: 'ok', detail: expect.stringContaining('sluice.jobs') });
    } finally {
      await worker.stop();
      await sluice.close();
      await burst.drop();
    }
  });

  it('reports dead tuples and bloat', async () => {
    await q(`ALTER TABLE sluice.metrics_minutely SET (autovacuum_enabled = false)`);
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed)
             SELECT 'bloat', timestamptz '2020-01-01' + k * interval '1 minute', 0, k FROM generate_series(1, 120000) k`);
    await q(`DELETE FROM sluice.metrics_minutely WHERE queue = 'bloat' AND completed % 100 <> 0`);
    const dead = await waitUntil(async () => (await doctorChecks(db.pool, 300_000)).find((c) => c.check === 'dead_tuples' && c.status === 'warn'), { what: 'dead tuples warning' });
    expect(dead.subject).toBe('sluice.metrics_minutely');
    await q(`VACUUM ANALYZE sluice.metrics_minutely`);
    const checks = await doctorChecks(db.pool, 300_000);
    const bloat = checks.find((c) => c.check === 'bloat');
    expect(bloat).toMatchObject({ status: 'warn', subject: 'sluice.metrics_minutely' });
    expect(bloat!.value).toBeGreaterThan(0.5);

    // Refilled: the statistics still describe the emptied table. No warning from them; the
    // ok row says they are stale, until ANALYZE gives fresh figures (no bloat then).
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed)
             SELECT 'refill', timestamptz '2020-01-01' + k * interval '1 minute', 0, k FROM generate_series(1, 120000) k`);
    // (The inserting connection reports its counts to the statistics within a second or so.)
    const stale = await waitUntil(
      async () => (await doctorChecks(db.pool, 300_000)).find((c) => c.check === 'bloat' && c.status === 'ok'),
      { what: 'the bloat check to see the refill' },
    );
    expect(stale.detail).toMatch(/statistics are stale, so not judged: sluice\.metrics_minutely \(\d+ rows changed since\)/);
    await q(`ANALYZE sluice.metrics_minutely`);
    expect((await doctorChecks(db.pool, 300_000)).find((c) => c.check === 'bloat')).toMatchObject({ status: 'ok', detail: 'no table is mostly empty space (estimate from statistics)' });
  });
});
