// Chaos: three worker processes share a queue while the test SIGKILLs one of
// them every ~2 s (and starts a fresh one in its place) and, once, cuts every
// database connection of the test database. Whatever happens, each job ends
// completed exactly once, by its last attempt, and a handler runs more than
// once only for a job whose worker was killed or stopped heartbeating.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sluice } from '../packages/sluice/src/index.js';
import { spawnFixture, type Child } from './helpers/child.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { READY_LINE, RUNS_TABLE_SQL, chaosJob } from './fixtures/chaos-worker.js';

const PROCESSES = 3;
const CONCURRENCY = 4;
const JOBS = 5_000;
const BATCH = 200; // enqueued every TICK_MS, so kills land while jobs are in flight
const TICK_MS = 500;
const KILL_EVERY_TICKS = 4; // one SIGKILL every ~2 s
const TERMINATE_AT_TICK = 11; // mid-run: pg_terminate_backend on every connection

interface Worker {
  slot: number;
  child: Child;
  killedByTest: boolean;
}

let db: TestDb;
let sluice: Sluice;
const children: Worker[] = [];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function spawnWorker(slot: number): Worker {
  const child = spawnFixture('test/fixtures/chaos-worker.ts', [db.url, `w${slot}`, String(CONCURRENCY)], { SLUICE_LOG_LEVEL: 'error' });
  const w: Worker = { slot, child, killedByTest: false };
  children.push(w);
  return w;
}

function describeChild(c: Worker): string {
  return `--- w${c.slot} pid ${c.child.pid} (exit ${JSON.stringify(c.child.exit)}):\n${c.child.output().slice(-4000)}`;
}

/** Fails fast, with its output, when a worker process died without being killed by the test. */
function assertNoUnexpectedExit(): void {
  const died = children.find((c) => c.child.exit !== null && !c.killedByTest);
  if (died) throw new Error(`worker process exited by itself\n${describeChild(died)}`);
}

async function waitReady(c: Worker): Promise<void> {
  await waitUntil(
    () => {
      assertNoUnexpectedExit();
      return c.child.lines.some((l) => l.includes(READY_LINE));
    },
    { timeoutMs: 30_000, intervalMs: 20, what: `worker w${c.slot} ready` },
  );
}

async function killChild(c: Worker): Promise<void> {
  c.killedByTest = true;
  c.child.process.kill('SIGKILL');
  await c.child.exited;
}

/** After the connections were cut, waits until the test's own pool answers again. */
async function poolAnswers(): Promise<void> {
  await waitUntil(
    async () => {
      try {
        await db.pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'test pool reconnected' },
  );
}

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query(RUNS_TABLE_SQL);
});

afterAll(async () => {
  for (const c of children) {
    if (c.child.exit === null) {
      c.killedByTest = true;
      c.child.process.kill('SIGKILL');
    }
  }
  await Promise.all(children.map((c) => c.child.exited));
  await sluice?.close();
  await db?.drop();
});

describe('chaos: workers killed and connections cut mid-run', () => {
  it(
    `completes each of ${JOBS} jobs exactly once`,
    async () => {
      const live: Worker[] = [];
      for (let slot = 0; slot < PROCESSES; slot++) live.push(spawnWorker(slot));
      await Promise.all(live.map(waitReady));

      const killedPids: number[] = [];
      let terminated = 0;
      const ids: number[] = [];
      let tick = 0;
      for (let n = 0; n < JOBS; tick++) {
        const tickStart = performance.now();
        const size = Math.min(BATCH, JOBS - n);
        const payloads = Array.from({ length: size }, (_, k) => ({ n: n + k }));
        ids.push(...(await sluice.enqueueMany(chaosJob, payloads)));
        n += size;
        await sleep(30); // let the workers get busy with the batch
        assertNoUnexpectedExit();

        if (tick > 0 && tick % KILL_EVERY_TICKS === 0) {
          const slot = (tick / KILL_EVERY_TICKS) % PROCESSES;
          const victim = live[slot]!;
          killedPids.push(victim.child.pid);
          await killChild(victim);
          live[slot] = spawnWorker(slot);
          // Not awaited: the others keep working while it starts; an early
          // exit of the new process is still caught by assertNoUnexpectedExit.
        }
        if (tick === TERMINATE_AT_TICK) {
          const admin = new pg.Client({ connectionString: db.url });
          await admin.connect();
          const { rows } = await admin.query<{ n: string }>(
            `SELECT count(*) AS n FROM (
               SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid()) t`,
          );
          terminated = Number(rows[0]!.n);
          await admin.end();
          await sleep(200);
          await poolAnswers();
        }
        await sleep(Math.max(0, TICK_MS - (performance.now() - tickStart)));
      }
      expect(ids).toHaveLength(JOBS);
      expect(new Set(ids).size).toBe(JOBS);
      expect(terminated).toBeGreaterThan(0);

      await waitUntil(
        async () => {
          assertNoUnexpectedExit();
          return (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'chaos'`)) >= JOBS;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: `${JOBS} jobs in history` },
      );
      // Counted after every process is gone, so a late run would show.
      for (const c of live) await killChild(c);

      // Every job is in history as completed exactly once, and nowhere else.
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs')).toBe(0);
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs')).toBe(0);
      expect(await count(db.pool, 'SELECT count(*) n FROM sluice.job_history')).toBe(JOBS);
      expect(
        await count(
          db.pool,
          `SELECT count(DISTINCT id) n FROM sluice.job_history
           WHERE id = ANY($1::bigint[]) AND state = 'completed' AND name = 'chaos.run'`,
          [ids],
        ),
      ).toBe(JOBS);

      // Each job was completed by its final recorded attempt: a run with the
      // history's attempt exists, and no run has a later attempt.
      const { rows: notByLastRun } = await db.pool.query(
        `SELECT h.id, h.attempt, (SELECT array_agg(r.attempt ORDER BY r.attempt) FROM runs r WHERE r.job_id = h.id) AS runs
         FROM sluice.job_history h
         WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = h.id AND r.attempt = h.attempt)
            OR EXISTS (SELECT 1 FROM runs r WHERE r.job_id = h.id AND r.attempt > h.attempt)
         LIMIT 10`,
      );
      expect(notByLastRun).toEqual([]);
      expect(await count(db.pool, 'SELECT count(*) n FROM runs WHERE job_id <> ALL($1::bigint[])', [ids])).toBe(0);

      // Extra runs exist only where a worker was killed or lost its lease.
      const runs = await count(db.pool, 'SELECT count(*) n FROM runs');
      const duplicates = runs - JOBS;
      const { rows: unexplained } = await db.pool.query(
        `WITH d AS (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1)
         SELECT d.job_id,
                (SELECT json_agg(json_build_object('attempt', r.attempt, 'pid', r.pid) ORDER BY r.ran_at)
                   FROM runs r WHERE r.job_id = d.job_id) AS runs,
                (SELECT h.errors FROM sluice.job_history h WHERE h.id = d.job_id) AS errors
         FROM d
         WHERE NOT EXISTS (
                 SELECT 1 FROM sluice.job_history h, jsonb_array_elements(h.errors) e
                 WHERE h.id = d.job_id AND e->>'kind' = 'crash')
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = d.job_id AND r.pid = ANY($1::int[]))
         LIMIT 10`,
        [killedPids],
      );
      expect(unexplained).toEqual([]);

      const { rows: errorKinds } = await db.pool.query<{ kind: string; n: string }>(
        `SELECT e->>'kind' AS kind, count(*) AS n FROM sluice.job_history h, jsonb_array_elements(h.errors) e
         GROUP BY 1 ORDER BY 1`,
      );
      const rescuedJobs = await count(
        db.pool,
        `SELECT count(*) n FROM sluice.job_history h
         WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(h.errors) e WHERE e->>'kind' = 'crash')`,
      );
      const jobsRunTwice = await count(db.pool, 'SELECT count(*) n FROM (SELECT 1 FROM runs GROUP BY job_id HAVING count(*) > 1) t');
      console.log(
        `chaos: jobs=${JOBS} processes=${PROCESSES}x${CONCURRENCY} kills=${killedPids.length} ` +
          `connections_terminated=${terminated} runs=${runs} duplicates=${duplicates} jobs_run_more_than_once=${jobsRunTwice} ` +
          `jobs_with_crash_error=${rescuedJobs} error_kinds=${JSON.stringify(Object.fromEntries(errorKinds.map((r) => [r.kind, Number(r.n)])))}`,
      );
      expect(killedPids.length).toBeGreaterThanOrEqual(4);
    },
    120_000,
  );
});
