// One announced job wakes a claim in a few worker processes, not in every
// one that listens (worker/wake.ts): the live workers of a queue take turns
// by the announcement's first job id.
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { WAKE_SPARE, WakeShare, parseAnnouncement } from '../packages/sluice/src/worker/wake.js';
import { waitUntil } from './helpers/db.js';
import { recordingPool } from './helpers/recording-pool.js';
import { useSuite } from './helpers/suite.js';

const suite = useSuite();

/** One WakeShare per rank of `live` workers of queue q, each with room for 4. */
function sharesOf(live: number): WakeShare[] {
  return Array.from({ length: live }, (_, rank) => {
    const w = new WakeShare(['q'], () => 4, 60_000);
    w.update([['q', live, rank]]);
    return w;
  });
}

describe('wake share', () => {
  it('an enqueue announces its queue, count and first id', async () => {
    const listener = new pg.Client({ connectionString: suite.db.url });
    await listener.connect();
    const got: string[] = [];
    listener.on('notification', (m) => m.channel === 'sluice_jobs' && got.push(m.payload ?? ''));
    await listener.query('LISTEN sluice_jobs');
    const job = defineJob({ name: 'ws.announce', queue: 'ws-announce', schema: z.object({}) });
    const ids = await suite.sluice.enqueueMany(job, [{}, {}, {}]);
    await waitUntil(() => got.length > 0, { what: 'notification' });
    await listener.end();
    const { rows } = await suite.db.pool.query<{ us: string }>(
      `SELECT (extract(epoch FROM run_at) * 1000000)::bigint AS us FROM sluice.jobs WHERE id = $1`,
      [Math.min(...ids)],
    );
    const runAtUs = Number(rows[0]!.us);
    expect(got).toEqual([`ws-announce 3 ${Math.min(...ids)} ${runAtUs}`]);
    expect(parseAnnouncement(got[0]!)).toEqual({ queue: 'ws-announce', count: 3, key: Math.min(...ids), runAtUs });
    // An older producer's announcement, without the run_at, still parses.
    expect(parseAnnouncement(`ws-announce 3 ${Math.min(...ids)}`)).toEqual({ queue: 'ws-announce', count: 3, key: Math.min(...ids) });
  });

  it('over consecutive ids every live worker takes its turn, count / room + spare at a time; a plain queue name or a stale view wakes all', () => {
    const live = 50;
    const shares = sharesOf(live);
    const woken = Array.from({ length: live }, () => 0);
    const rounds = 20 * live;
    for (let key = 1_000; key < 1_000 + rounds; key++) {
      const claimers = shares.filter((w) => w.claims({ queue: 'q', count: 1, key }));
      expect(claimers).toHaveLength(1 + WAKE_SPARE);
      shares.forEach((w, rank) => (woken[rank]! += claimers.includes(w) ? 1 : 0));
      expect(shares.filter((w) => w.claims({ queue: 'q', count: 20, key }))).toHaveLength(5 + WAKE_SPARE);
    }
    // Evenly spread, each is woken rounds * (1 + spare) / live times.
    const even = (rounds * (1 + WAKE_SPARE)) / live;
    expect(Math.min(...woken), JSON.stringify(woken)).toBeGreaterThanOrEqual(even / 3);
    expect(Math.max(...woken), JSON.stringify(woken)).toBeLessThanOrEqual(even * 3);
    expect(shares.every((w) => w.claims(parseAnnouncement('q')))).toBe(true);
    expect(shares.some((w) => w.claims({ queue: 'other', count: 1, key: 1 }))).toBe(false);
    const stale = new WakeShare(['q'], () => 4, 0);
    stale.update([['q', live, 0]]);
    expect(stale.claims({ queue: 'q', count: 1, key: 25 })).toBe(true);
  });

  it.each([
    [4, 4],
    [6, 3],
    [8, 8],
    [8, 16],
    [5, 25],
    [50, 50],
    [8, 7],
    [6, 5],
    [50, 49],
  ])('with %i workers and first ids %i apart (batches of one size), every worker still takes its turn', (live, stride) => {
    const shares = sharesOf(live);
    const woken = Array.from({ length: live }, () => 0);
    const rounds = 20 * live;
    for (let n = 0, key = 1_000; n < rounds; n++, key += stride) {
      shares.forEach((w, rank) => (woken[rank]! += w.claims({ queue: 'q', count: 1, key }) ? 1 : 0));
    }
    // Each announcement wakes 1 + spare; evenly spread, a worker is woken rounds * (1 + spare) / live times.
    const even = (rounds * (1 + WAKE_SPARE)) / live;
    expect(Math.min(...woken), JSON.stringify(woken)).toBeGreaterThanOrEqual(even / 3);
  });

  it('a stopping worker leaves the wake windows at once: with two of three stopping, every announced job runs at once', async () => {
    const job = defineJob({ name: 'ws.stopping', queue: 'ws-stopping', schema: z.object({}) });
    const gate = { open: () => {} };
    const held = new Promise<void>((r) => (gate.open = r));
    const ran: number[] = [];
    const holders = ['ws-hold-a', 'ws-hold-b'].map((queue) => defineJob({ name: queue, queue, schema: z.object({}) }));
    const holding = holders.map(() => false);
    // Polls never come within the test: only an announcement makes a worker claim.
    const common = { concurrency: 1, pollIntervalMs: 600_000, heartbeatIntervalMs: 200, workerDeadAfterMs: 5_000, shutdownTimeoutMs: 60_000 };
    const workers: Worker[] = [0, 1, 2].map((i) =>
      suite.startWorker({
        ...common,
        handlers: [
          job.handle((_p, ctx) => void ran.push(ctx.job.id)),
          ...(i < 2 ? [holders[i]!.handle(async () => ((holding[i] = true), await held))] : []),
        ],
      }),
    );
    try {
      for (const w of workers) await w.start();
      await Promise.all(holders.map((h) => suite.sluice.enqueue(h, {})));
      await waitUntil(() => holding.every(Boolean), { what: 'both stopping workers hold a job' });
      const stops = workers.slice(0, 2).map((w) => w.stop());
      // sluice.workers_alive (and queue_stats from it) lists the queues each worker claims from.
      const claimers = async () =>
        (await suite.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sluice.workers_alive WHERE 'ws-stopping' = ANY(queues)`)).rows[0]!.n;
      await waitUntil(async () => (await claimers()) === 1, { what: 'only the live worker counted' });
      // Two beats of each live worker since: their views no longer count the stopping ones.
      for (let i = 0; i < 2; i++) {
        const { rows } = await suite.db.pool.query<{ at: Date }>(`SELECT clock_timestamp() AS at`);
        await waitUntil(
          async () =>
            (await suite.db.pool.query(`SELECT 1 FROM sluice.workers WHERE id = ANY($1) AND heartbeat_at > $2`, [workers.slice(2).map((w) => w.id), rows[0]!.at]))
              .rowCount === 1,
          { what: 'beats of the live workers' },
        );
      }
      // One job an announcement, each run before the next is sent, so that
      // no claim of the live worker refills past it: with the stopping two
      // counted, a window of 1 + spare fell on them alone for a third of the
      // ids, and that job waited for a poll.
      for (let i = 0; i < 24; i++) {
        const id = await suite.sluice.enqueue(job, {});
        await waitUntil(() => ran.includes(id), { what: `announced job ${i} run`, timeoutMs: 10_000 });
      }
      gate.open();
      await Promise.all(stops);
    } finally {
      gate.open();
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  it('six idle worker processes: one job announced costs at most 1 + spare claims, and runs once', async () => {
    const job = defineJob({ name: 'ws.one', queue: 'ws-one', schema: z.object({}) });
    const runs: string[] = [];
    const pools = Array.from({ length: 6 }, () => recordingPool(suite.db.url));
    // Polls never come within the test: only an announcement makes a worker claim.
    const workers: Worker[] = pools.map((p, i) =>
      createWorker({
        pool: p.pool,
        handlers: [job.handle(() => void runs.push(`w${i}`))],
        concurrency: 1,
        pollIntervalMs: 600_000,
        heartbeatIntervalMs: 200,
        workerDeadAfterMs: 1_000,
        logger: pino({ level: 'silent' }),
      }),
    );
    try {
      for (const w of workers) await w.start();
      // Each has beaten twice since the last one registered: every view holds all six.
      // A leader's beat, or a follower's (its bid for the lock first).
      const beats = (p: { sent: string[] }) => p.sent.filter((s) => s === 'sluice_beat_on_session' || s === 'sluice_beat_try_lead').length;
      const after = pools.map(beats);
      await waitUntil(() => pools.every((p, i) => beats(p) >= after[i]! + 2), { what: 'views refreshed' });
      const claims = () => pools.reduce((n, p) => n + p.sent.filter((s) => s === 'sluice_job_claim').length, 0);
      const before = claims();
      const [id] = await suite.sluice.enqueueMany(job, [{}]);
      await waitUntil(() => runs.length === 1, { what: 'job ran' });
      expect((await suite.sluice.getJob(id!)).attempt).toBe(1);
      // Late claims would come within a few beats.
      const settled = pools.map(beats);
      await waitUntil(() => pools.every((p, i) => beats(p) >= settled[i]! + 2), { what: 'a few beats later' });
      const spent = claims() - before;
      expect(spent).toBeGreaterThanOrEqual(1);
      expect(spent).toBeLessThanOrEqual(1 + WAKE_SPARE);
      expect(runs).toHaveLength(1);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.all(pools.map((p) => p.pool.end()));
    }
  });
});
