// Exactly-once across processes: several worker processes share one queue of
// 10,000 jobs; when none of them crashes, every job runs exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sluice } from '../packages/sluice/src/index.js';
import { spawnFixture, type Child } from './helpers/child.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { READY_LINE, RUNS_TABLE_SQL, STOPPED_LINE, recordRun } from './fixtures/multi-process-job.js';

const PROCESSES = 3;
const CONCURRENCY = 16;
const JOBS = 10_000;

let db: TestDb;
let sluice: Sluice;
const children: { label: string; child: Child }[] = [];

function spawnWorker(label: string): void {
  children.push({ label, child: spawnFixture('test/fixtures/worker-process.ts', [db.url, label, String(CONCURRENCY)]) });
}

function describeChildren(): string {
  return children.map((c) => `--- ${c.label} (exit ${JSON.stringify(c.child.exit)}):\n${c.child.output().slice(-4000)}`).join('\n');
}

/** Where the jobs are, for a failure message. */
async function describeState(): Promise<string> {
  const live = await db.pool.query(`SELECT state, attempt, count(*)::int AS n FROM sluice.jobs GROUP BY 1, 2 ORDER BY 1, 2`);
  const history = await db.pool.query(`SELECT state, attempt, count(*)::int AS n FROM sluice.job_history GROUP BY 1, 2 ORDER BY 1, 2`);
  const dead = await db.pool.query(`SELECT id, reason, errors FROM sluice.dead_jobs LIMIT 3`);
  const runs = await db.pool.query(`SELECT worker, attempt, count(*)::int AS n FROM runs GROUP BY 1, 2 ORDER BY 1, 2`);
  return JSON.stringify({ live: live.rows, history: history.rows, dead: dead.rows, runs: runs.rows }, null, 1);
}

/** Fails fast, with the children's output, when one died instead of waiting for a timeout. */
function assertAllAlive(): void {
  const dead = children.find((c) => c.child.exit !== null);
  if (dead) throw new Error(`worker process ${dead.label} exited early\n${describeChildren()}`);
}

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query(RUNS_TABLE_SQL);
});

afterAll(async () => {
  // On failure the children may still be running: kill them so the run ends.
  for (const c of children) {
    if (c.child.exit === null) c.child.process.kill('SIGKILL');
  }
  await Promise.all(children.map((c) => c.child.exited));
  await sluice?.close();
  await db?.drop();
});

describe('several worker processes on one queue', () => {
  it(`run each of ${JOBS} jobs exactly once and exit cleanly`, async () => {
    for (let i = 0; i < PROCESSES; i++) spawnWorker(`p${i}`);
    await waitUntil(
      () => {
        assertAllAlive();
        return children.every((c) => c.child.lines.some((l) => l.includes(READY_LINE)));
      },
      { timeoutMs: 30_000, what: 'worker processes ready' },
    );
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.workers')).toBe(PROCESSES);

    // Several batches, so the processes are already claiming while more arrive.
    const ids: number[] = [];
    const BATCH = 2_500;
    for (let start = 0; start < JOBS; start += BATCH) {
      const payloads = Array.from({ length: BATCH }, (_, k) => ({ n: start + k }));
      ids.push(...(await sluice.enqueueMany(recordRun, payloads)));
    }
    expect(ids).toHaveLength(JOBS);
    expect(new Set(ids).size).toBe(JOBS);

    await waitUntil(
      async () => {
        assertAllAlive();
        return (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'mp'`)) >= JOBS;
      },
      { timeoutMs: 45_000, intervalMs: 100, what: `${JOBS} jobs in history` },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await describeState()}\n${describeChildren()}`, { cause: err });
    });

    // Stop every child the way a service is stopped, and see it exit by itself.
    for (const c of children) c.child.process.kill('SIGTERM');
    await Promise.all(children.map((c) => c.child.exited));
    expect(children.map((c) => c.child.exit), describeChildren()).toEqual(children.map(() => ({ code: 0, signal: null })));
    for (const c of children) expect(c.child.output(), c.label).toContain(STOPPED_LINE);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.workers')).toBe(0);

    // Counted after every process is gone, so a late duplicate run would show.
    const { rows: dupes } = await db.pool.query<{ job_id: string; runs: string }>(
      'SELECT job_id, count(*) AS runs FROM runs GROUP BY job_id HAVING count(*) <> 1 ORDER BY job_id LIMIT 10',
    );
    const state = await describeState();
    expect(dupes, state).toEqual([]);
    expect(await count(db.pool, 'SELECT count(*) n FROM runs')).toBe(JOBS);
    expect(await count(db.pool, 'SELECT count(*) n FROM runs WHERE job_id <> ALL($1::bigint[])', [ids])).toBe(0);
    expect(await count(db.pool, 'SELECT count(*) n FROM runs WHERE attempt <> 1'), state).toBe(0);
    // Each run saw the payload of its own job.
    const { rows: mismatched } = await db.pool.query(
      'SELECT r.job_id FROM runs r JOIN unnest($1::bigint[]) WITH ORDINALITY AS e(id, ord) ON e.id = r.job_id WHERE r.n <> e.ord - 1 LIMIT 5',
      [ids],
    );
    expect(mismatched).toEqual([]);

    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.jobs')).toBe(0);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.dead_jobs')).toBe(0);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.job_history')).toBe(JOBS);
    expect(
      await count(
        db.pool,
        `SELECT count(DISTINCT id) n FROM sluice.job_history
         WHERE id = ANY($1::bigint[]) AND state = 'completed' AND attempt = 1 AND name = 'mp.record'`,
        [ids],
      ),
    ).toBe(JOBS);

    // The work was really shared: every process ran some of it.
    const { rows: perWorker } = await db.pool.query<{ worker: string; n: string }>(
      'SELECT worker, count(*) AS n FROM runs GROUP BY worker ORDER BY worker',
    );
    expect(perWorker.map((r) => r.worker)).toEqual(children.map((c) => c.label));
  });
});
