// Three worker processes share a per-second schedule for over a minute; the
// maintenance leader (the one that fires cron) is SIGKILLed halfway and
// another takes over. Every fire time must be enqueued exactly once, those
// that fell inside the failover late rather than never. How late the fires
// are enqueued and started is measured by the bench (packages/bench,
// scenario "cron").
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnFixture, type Child } from './helpers/child.js';
import { createTestDb, type TestDb } from './helpers/db.js';

const RUN_MS = Number(process.env.SLUICE_CRON_CLUSTER_MS ?? 62_000);
let db: TestDb;
const children: Child[] = [];

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await db.drop();
});

it('3 schedulers, one killed mid-run: every per-second fire time enqueued exactly once, none missing', async () => {
  for (let i = 0; i < 3; i++) children.push(spawnFixture('test/fixtures/cron-worker.ts', [db.url]));
  await Promise.all(children.map((c) => c.waitForLine(/^READY$/)));
  await new Promise((r) => setTimeout(r, RUN_MS / 2));
  const leaders = children.filter((c) => c.lines.includes('LEADER'));
  expect(leaders).toHaveLength(1);
  const survivors = children.filter((c) => c !== leaders[0]);
  leaders[0]!.process.kill('SIGKILL');
  await leaders[0]!.exited;
  await Promise.race(survivors.map((c) => c.waitForLine(/^LEADER$/)));
  await new Promise((r) => setTimeout(r, RUN_MS / 2));
  for (const c of survivors) c.process.kill('SIGTERM');
  await Promise.all(survivors.map((c) => c.exited));

  // Fired jobs, wherever they are now (most have run and moved to history).
  const { rows } = await db.pool.query<{ unique_key: string; run_at: Date }>(
    `SELECT unique_key, run_at FROM sluice.jobs WHERE name = 'cluster.tick'
     UNION ALL
     SELECT unique_key, run_at FROM sluice.job_history WHERE name = 'cluster.tick'
     ORDER BY run_at`,
  );
  const seconds = rows.map((r) => r.run_at.getTime());
  // Exactly once: no fire time twice.
  expect(new Set(seconds).size).toBe(seconds.length);
  expect(new Set(rows.map((r) => r.unique_key)).size).toBe(rows.length);
  // None missing: consecutive seconds from the first fire to the last.
  for (let i = 1; i < seconds.length; i++) expect(seconds[i]! - seconds[i - 1]!).toBe(1_000);
  expect(seconds.length).toBeGreaterThanOrEqual(Math.floor((RUN_MS - 3_000) / 1_000));
}, 120_000);
