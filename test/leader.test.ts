// One maintenance leader per database: only the leader runs the promoter,
// rescuer, ager, scheduler, retention and alert checks; every worker claims
// and heartbeats. When the leader dies another worker takes over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Sluice, createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { spawnFixture, type Child } from './helpers/child.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { recordingPool } from './helpers/recording-pool.js';
import { CuttableProxy } from './helpers/cuttable-proxy.js';
import { LEADER_LINE, READY_LINE, RUNS_TABLE_SQL, recordRun } from './fixtures/multi-process-job.js';
import { z } from 'zod';

/** Statements only the database-wide duties send. */
const DUTY_STATEMENTS = [
  'sluice_job_promote_due',
  'sluice_job_next_due',
  'sluice_job_release_orphaned_waiting',
  'sluice_job_rescue_expired',
  'sluice_job_age_priorities',
  'sluice_worker_reap',
  'sluice_cron_next_due',
  'sluice_alert_state_sync',
];

let db: TestDb;
let sluice: Sluice;
const children: Child[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query(RUNS_TABLE_SQL);
});

afterAll(async () => {
  for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await sluice?.close();
  await db?.drop();
});

describe('maintenance leader', () => {
  it('a follower claims and heartbeats but sends none of the duty statements; it leads once the leader stops', async () => {
    const noop = defineJob({ name: 'leader.noop', queue: 'leader-noop', schema: z.object({}) });
    const logger = pino({ level: 'silent' });
    const a = recordingPool(db.url);
    const b = recordingPool(db.url);
    const options = { handlers: [noop.handle(() => {})], heartbeatIntervalMs: 100, pollIntervalMs: 100, logger };
    const first: Worker = createWorker({ ...options, pool: a.pool });
    const second: Worker = createWorker({ ...options, pool: b.pool });
    try {
      await first.start();
      await second.start();
      expect(first.isLeader).toBe(true);
      expect(second.isLeader).toBe(false);
      // The leader has run its duties, and the follower has beaten and claimed a few times meanwhile.
      await waitUntil(() => ['sluice_job_promote_due', 'sluice_job_rescue_expired', 'sluice_alert_state_sync'].every((s) => a.sent.includes(s)), {
        what: 'leader duties ran',
      });
      // A follower's beat is also its bid for the lock, sent on its LISTEN session.
      const beats = () => b.sent.filter((s) => s === 'sluice_beat_try_lead').length;
      const beatsBefore = beats();
      await waitUntil(() => beats() >= beatsBefore + 3, { what: 'follower heartbeats' });
      expect(b.sent).toContain('sluice_job_claim');
      expect(b.sent.filter((s) => DUTY_STATEMENTS.includes(s))).toEqual([]);

      const elected = new Promise<boolean>((resolve) => second.once('leader', resolve));
      await first.stop();
      expect(await elected).toBe(true);
      expect(second.isLeader).toBe(true);
      await waitUntil(() => b.sent.includes('sluice_job_promote_due'), { what: 'new leader promotes' });
    } finally {
      await first.stop();
      await second.stop();
      await a.pool.end();
      await b.pool.end();
    }
  });

  it('a leader whose LISTEN connection went silent without closing is replaced: the session it left holding the lock is ended', async () => {
    const noop = defineJob({ name: 'leader.silent', queue: 'leader-silent', schema: z.object({}) });
    const logger = pino({ level: 'silent' });
    const proxy = new CuttableProxy(new URL(db.url));
    await proxy.start();
    const options = { handlers: [noop.handle(() => {})], heartbeatIntervalMs: 200, workerDeadAfterMs: 2_000, pollIntervalMs: 100, logger };
    // The leader's LISTEN session goes through the proxy; its pool, and the follower, go direct.
    const leader = createWorker({ ...options, connectionString: db.url, listenConnectionString: proxy.url() });
    const follower = createWorker({ ...options, connectionString: db.url });
    try {
      await leader.start();
      await waitUntil(() => leader.isLeader, { what: 'the first worker leads' });
      await follower.start();
      const holder = async () =>
        (
          await db.pool.query<{ pid: number }>(
            `SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          )
        ).rows.map((r) => r.pid);
      const [orphan] = await holder();
      expect(orphan).toBeGreaterThan(0);
      // The server keeps that session open and idle, holding the lock; the leader gives it up and steps down.
      proxy.freeze();
      await waitUntil(() => !leader.isLeader, { timeoutMs: 10_000, what: 'the leader stepped down' });
      await waitUntil(() => follower.isLeader || leader.isLeader, { timeoutMs: 20_000, what: 'a worker leads again' });
      expect(await holder()).not.toContain(orphan);
    } finally {
      await follower.stop();
      await leader.stop();
      await proxy.close();
    }
  }, 45_000);

  it('three worker processes, the leader SIGKILLed: another is elected and promotes a delayed job enqueued before the kill', async () => {
    for (let i = 0; i < 3; i++) children.push(spawnFixture('test/fixtures/worker-process.ts', [db.url, `p${i}`, '2']));
    await Promise.all(children.map((c) => c.waitForLine(new RegExp(`^${READY_LINE}`))));
    const leaders = () => children.filter((c) => c.lines.some((l) => l.startsWith(LEADER_LINE)));
    await waitUntil(() => leaders().length >= 1, { what: 'a leader' });
    expect(leaders()).toHaveLength(1);
    const leader = leaders()[0]!;
    const survivors = children.filter((c) => c !== leader);

    // Due in 1.5 s: the leader is dead by then, so only a new leader can promote it.
    const runAt = new Date(Date.now() + 1_500);
    const [id] = await sluice.enqueueMany(recordRun, [{ n: 1 }], { runAt });
    const killedAt = performance.now();
    leader.process.kill('SIGKILL');
    await leader.exited;
    const [elected] = await Promise.race(survivors.map((c) => c.waitForLine(new RegExp(`^${LEADER_LINE}`), 30_000).then(() => [c] as const)));
    const failoverMs = performance.now() - killedAt;
    await waitUntil(() => count(db.pool, 'SELECT count(*) n FROM runs WHERE job_id = $1', [id]), { what: 'delayed job ran' });
    const { rows } = await db.pool.query<{ worker: string; lag_ms: number }>(
      `SELECT worker, (extract(epoch FROM ran_at - $2::timestamptz) * 1000)::float8 AS lag_ms FROM runs WHERE job_id = $1`,
      [id, runAt],
    );
    expect(rows).toHaveLength(1);
    expect(survivors.some((c) => c.lines.some((l) => l.startsWith(LEADER_LINE)) && c === elected)).toBe(true);
    // The survivor that was not elected still claims: a job due now is run by whichever is free.
    const ids = await sluice.enqueueMany(recordRun, Array.from({ length: 20 }, (_, n) => ({ n })));
    await waitUntil(async () => (await count(db.pool, 'SELECT count(*) n FROM runs WHERE job_id = ANY($1)', [ids])) === 20, { what: 'jobs ran' });
    console.log(`leader failover after SIGKILL: ${failoverMs} ms; delayed job started ${rows[0]!.lag_ms.toFixed(0)} ms after its run_at`);
  }, 60_000);
});
