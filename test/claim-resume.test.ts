// Claims resume behind the last job claimed (sluice.claim's after_* keys), so
// a transaction held open elsewhere does not make every claim walk the
// entries of all the jobs claimed before. What makes a job available behind
// such a key announces it on sluice_rewind, and the worker starts over.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import type { Queryable } from '../packages/sluice/src/executor.js';
import { jobReleaseMany, type ClaimedJobRow } from '../packages/sluice/src/sql/job-leases.js';
import { CLAIM_REWIND_MS, Fetcher } from '../packages/sluice/src/worker/fetcher.js';
import { parseAnnouncement } from '../packages/sluice/src/worker/wake.js';
import { jobRequestFinishNotice } from '../packages/sluice/src/sql/jobs.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';

let db: TestDb;
let sluice: Sluice;
let listener: pg.Client;
const rewinds: string[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool, logger: pino({ level: 'silent' }) });
  listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  listener.on('notification', (m) => m.channel === 'sluice_rewind' && rewinds.push(m.payload ?? ''));
  await listener.query('LISTEN sluice_rewind');
});
afterAll(async () => {
  await listener?.end();
  await sluice?.close();
  await db?.drop();
});

interface Claimed {
  id: string;
  priority: number;
  run_at_us: string;
}

async function claim(queue: string, limit: number, after: Claimed | null): Promise<Claimed[]> {
  const { rows } = await db.pool.query<Claimed>(
    `SELECT c.id, c.priority, (extract(epoch FROM c.run_at) * 1000000)::bigint AS run_at_us
     FROM sluice.claim(ARRAY[$1], ARRAY[$2]::integer[], 'resume-test', 60000, $3::smallint[], $4::bigint[], $5::bigint[]) c
     ORDER BY c.priority DESC, c.run_at, c.id`,
    [queue, limit, after && [after.priority], after && [after.run_at_us], after && [after.id]],
  );
  return rows;
}

/**
 * A Fetcher of one queue on the real database, driven by hand: claim() runs
 * one claim of up to `room` jobs; keys lists the resume key each claim sent
 * (null: from the front); hold() keeps the answers of the next statements
 * back, after the database gave them, until the function it returns is
 * called: as when an answer is still on the wire while the LISTEN connection
 * delivers a notification.
 */
function handFetcher(queue: string, room: number) {
  let gate: Promise<void> = Promise.resolve();
  let answered = 0;
  const keys: (unknown[] | null)[] = [];
  const gated: Queryable = { query: async (config) => {
    const { name, values } = config as { name?: string; values?: unknown[] };
    if (name === 'sluice_job_claim') keys.push(values![4] === null ? null : [values![4], values![5], values![6]]);
    const result = await db.pool.query(config as never);
    answered++;
    await gate;
    return result as never;
  } };
  const accepted: ClaimedJobRow[] = [];
  const fetcher = new Fetcher(gated, {
    queues: [queue], workerId: `${queue}-worker`, leaseMs: 60_000, pollIntervalMs: 1_000,
    lowWater: () => 0, room: () => room, freeSlots: () => room, bufferedCount: () => 0, accept: (rows) => void accepted.push(...rows),
    heldIds: () => accepted.map((r) => Number(r.id)),
  }, pino({ level: 'silent' }));
  fetcher.listening = () => true;
  const claim = (fetcher as unknown as { claim(shares: number[]): Promise<unknown> }).claim.bind(fetcher);
  return {
    fetcher,
    keys,
    claim: () => claim([room]),
    ids: () => accepted.map((r) => Number(r.id)),
    answered: () => answered,
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return release;
    },
  };
}

describe('claims that resume', () => {
  it('resume after the key, still taking higher and lower priorities; a job made available behind it is announced', async () => {
    const job = defineJob({ name: 'resume.job', queue: 'resume', schema: z.object({ n: z.number() }) });
    const ids = await sluice.enqueueMany(job, [1, 2, 3, 4].map((n) => ({ n })));
    const first = await claim('resume', 2, null);
    expect(first.map((r) => Number(r.id))).toEqual(ids.slice(0, 2));
    const high = await sluice.enqueue(job, { n: 5 }, { priority: 'high' });
    const low = await sluice.enqueue(job, { n: 6 }, { priority: 'low' });
    const next = await claim('resume', 10, first.at(-1)!);
    expect(next.map((r) => Number(r.id))).toEqual([high, ids[2], ids[3], low]);

    // A job enqueued with a run_at already past sorts behind the key: it is announced.
    rewinds.length = 0;
    const behind = await sluice.enqueue(job, { n: 7 }, { runAt: new Date(Date.now() - 60_000) });
    await waitUntil(() => rewinds.includes('resume'), { what: 'rewind for a past run_at' });
    expect(await claim('resume', 10, next.at(-2)!)).toEqual([]);
    expect((await claim('resume', 10, null)).map((r) => Number(r.id))).toEqual([behind]);
  });

  it('promotion and release announce a rewind; a plain enqueue does not', async () => {
    const job = defineJob({ name: 'resume.other', queue: 'resume-other', schema: z.object({}) });
    rewinds.length = 0;
    await sluice.enqueue(job, {});
    const delayed = await sluice.enqueue(job, {}, { delayMs: 50 });
    await waitUntil(async () => (await db.pool.query(`SELECT sluice.promote_due(10) AS n`)).rows[0].n >= 1, { what: 'promoted' });
    await waitUntil(() => rewinds.includes('resume-other'), { what: 'rewind after promotion' });
    expect(rewinds.filter((q) => q === 'resume-other')).toHaveLength(1);
    const claimed = await claim('resume-other', 10, null);
    expect(claimed.map((r) => Number(r.id))).toContain(delayed);

    // The worker gives them back (shutdown, pause): one rewind for the queue.
    const { rows: held } = await db.pool.query<{ id: string; attempt: number; lease: string }>(
      `SELECT id, attempt, sluice.lease_token(attempted_at) AS lease FROM sluice.jobs WHERE queue = 'resume-other' AND locked_by = 'resume-test'`,
    );
    expect(held).toHaveLength(2);
    rewinds.length = 0;
    const released = await jobReleaseMany(db.pool, {
      ids: held.map((h) => Number(h.id)),
      attempts: held.map((h) => h.attempt),
      leases: held.map((h) => Number(h.lease)),
      workerId: 'resume-test',
    });
    expect(released).toBe(2);
    await waitUntil(() => rewinds.includes('resume-other'), { what: 'rewind after release' });
    expect(rewinds.filter((q) => q === 'resume-other')).toHaveLength(1);
  });

  it('an enqueue whose transaction stayed open while later ones were claimed is claimed when it commits: its announced run_at is behind them', async () => {
    const job = defineJob({ name: 'resume.late', queue: 'resume-late', schema: z.object({ n: z.number() }) });
    const ran: number[] = [];
    // The queue's row exists: the open transaction would otherwise hold its creation.
    await db.pool.query(`INSERT INTO sluice.queues (name) VALUES ('resume-late')`);
    // No poll within the test, and a periodic rewind no sooner than 10 s after the start.
    const w = createWorker({ connectionString: db.url, pollIntervalMs: 600_000, concurrency: 1, handlers: [job.handle((p) => void ran.push(p.n))] });
    await w.start();
    try {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await sluice.enqueue(job, { n: 0 }, { tx: client });
        // Its run_at is its transaction's start: the later jobs, claimed
        // first, leave it behind where the worker's claims resume. Open for
        // less than the second after which its enqueue would announce a
        // rewind: only its own announcement at commit can bring it.
        await new Promise((r) => setTimeout(r, 300));
        await sluice.enqueueMany(job, [{ n: 1 }, { n: 2 }]);
        await waitUntil(() => ran.length === 2, { what: 'the later jobs ran' });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      // Heard before this one's: the held job was claimed by then.
      await sluice.enqueue(job, { n: 3 });
      await waitUntil(() => ran.includes(3), { what: 'the last job ran' });
      expect(ran).toEqual([1, 2, 0, 3]);
    } finally {
      await w.stop();
    }
  });

  it('aging announces a rewind of the queues it aged', async () => {
    const job = defineJob({ name: 'resume.aged', queue: 'resume-aged', schema: z.object({}) });
    await db.pool.query(`INSERT INTO sluice.queues (name, aging_after_ms) VALUES ('resume-aged', 1000)`);
    await sluice.enqueue(job, {}, { runAt: new Date(Date.now() - 60_000) });
    await waitUntil(() => rewinds.includes('resume-aged'), { what: 'rewind for the past run_at' });
    rewinds.length = 0;
    expect((await db.pool.query<{ n: number }>('SELECT sluice.age_priorities() AS n')).rows[0]!.n).toBe(1);
    await waitUntil(() => rewinds.includes('resume-aged'), { what: 'rewind after aging' });
  });

  // Claims resumed 2 s of run_at behind the last job claimed (for enqueues
  // committed out of order), so every claim walked again the entries of every
  // job claimed in those 2 s: with a burst enqueued at one run_at, of all of
  // them, each claim.
  it('a claim resumes right after the last job claimed, and an announcement behind it moves it back to the announced jobs, not to the front', async () => {
    const job = defineJob({ name: 'resume.exact', queue: 'resume-exact', schema: z.object({ n: z.number() }) });
    const burst = await sluice.enqueueMany(job, [1, 2, 3, 4, 5, 6].map((n) => ({ n })));
    const { fetcher, keys, claim: claimTwo, ids } = handFetcher('resume-exact', 2);
    const [{ run_at_us: burstAtUs }] = (await db.pool.query<{ run_at_us: string }>(
      `SELECT (extract(epoch FROM run_at) * 1000000)::bigint AS run_at_us FROM sluice.jobs WHERE id = $1`, [burst[0]])).rows as [{ run_at_us: string }];
    const at = Number(burstAtUs);

    await claimTwo();
    await claimTwo();
    expect(ids()).toEqual(burst.slice(0, 4));
    expect(keys).toEqual([null, [[0], [at], [burst[1]]]]);
    // Announced late, the burst's own jobs: claimed already, behind the key.
    fetcher.announced('resume-exact', at, burst[0]!);
    // Another enqueue's, ahead of the key: nothing moves.
    fetcher.announced('resume-exact', at + 1, 1);
    await claimTwo();
    expect(keys.at(-1)).toEqual([[0], [at], [burst[0]! - 1]]);
    expect(ids()).toEqual(burst);
  });

  // Heard while a claim was in flight, an announcement of jobs that claim's
  // snapshot did not hold was checked against the key before the claim, not
  // after it: the claim then moved the key past them, and they waited for the
  // periodic rewind (jobs 6-10 s late at 500 jobs/s, found by a probe).
  it('jobs announced while a claim is in flight, committed behind what it claimed, are claimed next', async () => {
    const job = defineJob({ name: 'resume.flight', queue: 'resume-flight', schema: z.object({ n: z.number() }) });
    const [first] = await sluice.enqueueMany(job, [{ n: 1 }]);
    const { fetcher, claim, ids, answered, hold } = handFetcher('resume-flight', 5);
    await claim();
    expect(ids()).toEqual([first]);

    // An enqueue whose transaction began before a later one's, and commits after it.
    const open = await db.pool.connect();
    try {
      await open.query('BEGIN');
      const [early] = await sluice.enqueueMany(job, [{ n: 2 }], { tx: open });
      const { rows: [at] } = await open.query<{ run_at_us: string }>(
        `SELECT (extract(epoch FROM run_at) * 1000000)::bigint AS run_at_us FROM sluice.jobs WHERE id = $1`, [early]);
      const [later] = await sluice.enqueueMany(job, [{ n: 3 }]);
      const release = hold();
      const inFlight = claim();
      await waitUntil(() => answered() === 2, { what: 'the claim answered by the database' });
      // Committed after that claim read the table; its announcement is heard before the claim's answer.
      await open.query('COMMIT');
      fetcher.announced('resume-flight', Number(at!.run_at_us), early!);
      release();
      await inFlight;
      expect(ids()).toEqual([first, later]);
      await claim();
      expect(ids()).toEqual([first, later, early]);
    } finally {
      open.release();
    }
  });

  it('a rewind that arrives while a claim is in flight is kept: the next claim starts from the front', async () => {
    const job = defineJob({ name: 'resume.race', queue: 'resume-race', schema: z.object({ n: z.number() }) });
    const [first, second, third] = await sluice.enqueueMany(job, [1, 2, 3].map((n) => ({ n })));
    const { fetcher, claim: claimOne, ids, answered, hold } = handFetcher('resume-race', 1);
    await claimOne();
    expect(ids()).toEqual([first]);
    const open = hold();
    const inFlight = claimOne();
    await waitUntil(() => answered() === 2, { what: 'the claim answered by the database' });
    // Made available behind the key after that claim read the table; the
    // worker hears of it on sluice_rewind before the claim's answer.
    const behind = await sluice.enqueue(job, { n: 0 }, { runAt: new Date(Date.now() - 60_000) });
    fetcher.rewind('resume-race');
    open();
    await inFlight;
    expect(ids()).toEqual([first, second]);
    await claimOne();
    expect(ids()).toEqual([first, second, behind]);
    await claimOne();
    expect(ids()).toEqual([first, second, behind, third]);
  });

  const resumeJob = (name: string, queue: string) => defineJob({ name, queue, schema: z.object({ n: z.number() }) });
  type ResumeJob = ReturnType<typeof resumeJob>;

  /**
   * Makes job `id` of `job`'s queue available in a transaction begun before a
   * later job was enqueued and claimed after `after` (so its run_at, that
   * transaction's start, lies behind where claims resume), and checks that it
   * lies there, available, and that its queue was announced on sluice_rewind.
   */
  async function availableBehindTheKey(
    job: ResumeJob,
    id: number,
    after: Claimed,
    makeAvailable: (tx: pg.PoolClient) => Promise<void>,
  ): Promise<void> {
    const queue = job.queue;
    const tx = await db.pool.connect();
    try {
      await tx.query('BEGIN');
      await tx.query('SELECT now()');
      const [later] = await sluice.enqueueMany(job, [{ n: 2 }]);
      const [b] = await claim(queue, 1, after);
      expect(Number(b!.id)).toBe(later);
      rewinds.length = 0;
      await makeAvailable(tx);
      await tx.query('COMMIT');
    } finally {
      tx.release();
    }
    const { rows: [behind] } = await db.pool.query<{ state: string; behind: boolean }>(
      `SELECT r.state, (r.run_at, r.id) < (l.run_at, l.id) AS behind FROM sluice.jobs r, sluice.jobs l WHERE r.id = $1 AND l.queue = $2 AND l.id <> r.id`,
      [id, queue],
    );
    expect(behind).toEqual({ state: 'available', behind: true });
    await waitUntil(() => rewinds.includes(queue), { timeoutMs: 5_000, what: `the rewind of ${queue}` });
  }

  // A retry due at once is stamped with its failing transaction's start:
  // behind a job enqueued while that transaction ran and claimed before it
  // committed. Announced on sluice_jobs alone, it waited for the periodic rewind.
  it('a job retried at once, made available behind where claims resume, is announced on sluice_rewind', async () => {
    const job = resumeJob('resume.retry', 'resume-retry');
    const [failing] = await sluice.enqueueMany(job, [{ n: 1 }]);
    const [a] = await claim('resume-retry', 1, null);
    expect(Number(a!.id)).toBe(failing);
    await availableBehindTheKey(job, failing!, a!, async (tx) => {
      const { rows } = await tx.query(
        `SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[], $5::integer[])`,
        [[failing], [1], [{ name: 'Error', message: 'once' }], [false], [0]],
      );
      expect(rows).toEqual([{ id: String(failing), outcome: 'retry' }]);
    });
  });

  it('a job retried by hand inside a transaction that began before later jobs were claimed is announced on sluice_rewind', async () => {
    const job = resumeJob('resume.retry-now', 'resume-retry-now');
    const [waiting] = await sluice.enqueueMany(job, [{ n: 1 }]);
    const [a] = await claim('resume-retry-now', 1, null);
    await db.pool.query(`SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[], $5::integer[])`,
      [[waiting], [1], [{ name: 'Error', message: 'once' }], [false], [3_600_000]]);
    expect((await sluice.getJob(waiting!)).state).toBe('scheduled');
    await availableBehindTheKey(job, waiting!, a!, (tx) => sluice.retry(waiting!, { tx }));
  });

  // waitFor marks the job for a notice with an UPDATE, which holds its row
  // while a claim woken by the enqueue passes it (SKIP LOCKED) and resumes
  // after the job behind it.
  it('a job a claim skipped while waitFor marked it is announced again with its key, and the next claim takes it', async () => {
    const job = defineJob({ name: 'resume.marked', queue: 'resume-marked', schema: z.object({ n: z.number() }) });
    const [marked, next] = await sluice.enqueueMany(job, [{ n: 1 }, { n: 2 }]);
    const { fetcher, claim: claimOne, ids } = handFetcher('resume-marked', 1);
    const announcements: string[] = [];
    const jobsListener = new pg.Client({ connectionString: db.url });
    await jobsListener.connect();
    jobsListener.on('notification', (m) => m.channel === 'sluice_jobs' && announcements.push(m.payload ?? ''));
    await jobsListener.query('LISTEN sluice_jobs');
    const marker = await db.pool.connect();
    try {
      await marker.query('BEGIN');
      await jobRequestFinishNotice(marker, marked!);
      await claimOne();
      expect(ids()).toEqual([next]);
      await marker.query('COMMIT');
      const heard = await waitUntil(() => announcements.find((a) => a.startsWith('resume-marked ')), { timeoutMs: 5_000, what: 'the announcement of the marked job' });
      const a = parseAnnouncement(heard);
      expect([a.queue, a.count, a.key]).toEqual(['resume-marked', 1, marked]);
      fetcher.announced(a.queue, a.runAtUs!, a.key!);
      await claimOne();
      expect(ids()).toEqual([next, marked]);
    } finally {
      marker.release();
      await jobsListener.end();
    }
  });

  it('a queue whose limit is removed is announced on sluice_rewind: jobs its limit held back lie behind where its claims resume', async () => {
    const job = defineJob({ name: 'resume.limit', queue: 'resume-limit', schema: z.object({ n: z.number() }) });
    await sluice.queues.configure('resume-limit', { groupConcurrency: 1 });
    const [a1] = await sluice.enqueueMany(job, [{ n: 1 }], { groupKey: 'a' });
    const [a2] = await sluice.enqueueMany(job, [{ n: 2 }], { groupKey: 'a' });
    const [b1] = await sluice.enqueueMany(job, [{ n: 3 }], { groupKey: 'b' });
    const { fetcher, claim: claimThree, ids } = handFetcher('resume-limit', 3);
    await claimThree();
    expect(ids()).toEqual([a1, b1]);
    rewinds.length = 0;
    await sluice.queues.configure('resume-limit', { groupConcurrency: null });
    await waitUntil(() => rewinds.includes('resume-limit'), { timeoutMs: 5_000, what: 'the rewind of resume-limit' });
    fetcher.rewind('resume-limit');
    await claimThree();
    expect(ids()).toEqual([a1, b1, a2]);
  });

  it('with a snapshot held open, a worker runs a stream of jobs, and a delayed job promoted late, behind where its claims resume', async () => {
    const job = defineJob({ name: 'resume.stream', queue: 'resume-stream', schema: z.object({ n: z.number() }) });
    const holder = new pg.Client({ connectionString: db.url });
    const locker = new pg.Client({ connectionString: db.url });
    await Promise.all([holder.connect(), locker.connect()]);
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder.query('SELECT count(*) FROM sluice.queues');
    const ran = new Set<number>();
    const worker = createWorker({ pool: db.pool, handlers: [job.handle((p) => void ran.add(p.n))], logger: pino({ level: 'silent' }) });
    await worker.start();
    // The worker starts its claims from the front again by itself no sooner
    // than CLAIM_REWIND_MS after its start: the delayed job must run before
    // then, so only the promoter's rewind can bring it.
    const rewindBy = performance.now() + CLAIM_REWIND_MS;
    try {
      const delayed = await sluice.enqueue(job, { n: -1 }, { delayMs: 200 });
      // Held, the promoter skips it past its run_at (a promoter that was down, a failover).
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM sluice.jobs WHERE id = $1 FOR UPDATE', [delayed]);
      let n = 0;
      const streamUntil = performance.now() + 1_000;
      while (performance.now() < streamUntil) {
        await sluice.enqueueMany(job, Array.from({ length: 50 }, () => ({ n: n++ })));
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitUntil(() => ran.size === n, { timeoutMs: rewindBy - performance.now() - 1_000, what: `the ${n} streamed jobs ran` });
      const { rows } = await db.pool.query<{ behind_ms: number }>(
        `SELECT (extract(epoch FROM (SELECT max(run_at) FROM sluice.job_history WHERE queue = 'resume-stream') - run_at) * 1000)::float8 AS behind_ms
         FROM sluice.jobs WHERE id = $1`,
        [delayed],
      );
      expect(rows[0]!.behind_ms).toBeGreaterThan(0);
      await locker.query('COMMIT');
      await waitUntil(() => ran.has(-1), { timeoutMs: rewindBy - performance.now() - 200, what: 'the delayed job ran before any periodic rewind' });
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      await worker.stop();
      await holder.query('ROLLBACK');
      await Promise.all([holder.end(), locker.end()]);
    }
  });
});
