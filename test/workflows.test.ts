// Issue 6, points 8-9: dependencies (dependsOn, onParentDead), flows (chain,
// fan-out/fan-in, one transaction) and batches (chunked insert, counts,
// onComplete callback, progress in SQL). Order is proven from database
// timestamps: a child's claim (attempted_at) never precedes a parent's end.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  DependencyError,
  JobFailedError,
  JobNotFoundError,
  PayloadValidationError,
  QueueFullError,
  Sluice,
  UnknownJobError,
  ValidationError,
  createWorker,
  defineJob,
  type FlowStep,
  type Worker,
} from '../packages/sluice/src/index.js';
import { ClaimWatchingPool } from './helpers/claims.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

let db: TestDb;
let sluice: Sluice;
const workers: Worker[] = [];

const step = defineJob({
  name: 'wf.step',
  queue: 'wf',
  schema: z.object({ key: z.string(), fail: z.boolean().optional(), hold: z.boolean().optional() }),
  maxAttempts: 1,
});
const fullStep = defineJob({ name: 'wf.full', queue: 'wf.full', schema: z.object({ key: z.string() }) });

// Holds of `hold: true` steps, released by key.
const holds = new Map<string, () => void>();
const holdFor = (key: string) => new Promise<void>((r) => holds.set(key, r));

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query(`CREATE TABLE wf_runs (job_id bigint NOT NULL, key text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(), ended_at timestamptz)`);
});
afterEach(async () => {
  for (const release of holds.values()) release();
  holds.clear();
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await sluice.close();
  await db.drop();
});

function startStepWorker(concurrency = 4, pool?: ClaimWatchingPool): Promise<void> {
  const w = createWorker({
    ...(pool ? { pool } : { connectionString: db.url }),
    pollIntervalMs: 100,
    runScheduler: false,
    concurrency,
    handlers: [
      step.handle(async (p, ctx) => {
        await db.pool.query(`INSERT INTO wf_runs (job_id, key) VALUES ($1, $2)`, [ctx.job.id, p.key]);
        if (p.hold) await holdFor(p.key);
        if (p.fail) throw new Error(`step ${p.key} failed`);
        await db.pool.query(`UPDATE wf_runs SET ended_at = clock_timestamp() WHERE job_id = $1`, [ctx.job.id]);
      }),
    ],
  });
  workers.push(w);
  return w.start();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stateOf = async (id: number) => (await sluice.getJob(id)).state;
const totalRows = () =>
  count(db.pool, `SELECT (SELECT count(*) FROM sluice.jobs) + (SELECT count(*) FROM sluice.job_history) + (SELECT count(*) FROM sluice.dead_jobs) AS n`);

/** Checks from the database clocks that no job was claimed before all its parents had finished. */
async function expectRanAfterParents(ids: Record<string, number>, parents: Record<string, string[]>): Promise<void> {
  for (const [key, after] of Object.entries(parents)) {
    const { rows } = await db.pool.query(
      `SELECT (SELECT attempted_at FROM sluice.job_history WHERE id = $1) AS child_claimed,
              (SELECT max(finished_at) FROM sluice.job_history WHERE id = ANY($2::bigint[])) AS parents_finished,
              (SELECT started_at FROM wf_runs WHERE job_id = $1) AS child_started,
              (SELECT max(ended_at) FROM wf_runs WHERE job_id = ANY($2::bigint[])) AS parents_ended`,
      [ids[key], after.map((k) => ids[k])],
    );
    const r = rows[0];
    expect(r.child_claimed, key).not.toBeNull();
    expect(r.child_claimed.getTime(), `${key} claimed after its parents finished`).toBeGreaterThanOrEqual(r.parents_finished.getTime());
    expect(r.child_started.getTime(), `${key} started after its parents' handlers ended`).toBeGreaterThan(r.parents_ended.getTime());
  }
}

describe('dependsOn', () => {
  it('a child waits until all its parents have completed', async () => {
    const p1 = await sluice.enqueue(step, { key: 'dep.p1' });
    const p2 = await sluice.enqueue(step, { key: 'dep.p2', hold: true });
    const child = await sluice.enqueue(step, { key: 'dep.child' }, { dependsOn: [p1, p2] });
    const waiting = await sluice.getJob(child);
    expect(waiting.state).toBe('waiting');
    expect(waiting.dependsOn).toEqual([p1, p2]);

    const pool = new ClaimWatchingPool(db.url);
    try {
      await startStepWorker(4, pool);
      await waitUntil(async () => (await stateOf(p1)) === 'completed' && (await stateOf(p2)) === 'running', { what: 'p1 done, p2 running' });
      // The worker, with free slots, looks for work after p1 completed and is given nothing.
      await pool.nextEmptyClaim();
      expect(await stateOf(child)).toBe('waiting');
      expect(await count(db.pool, `SELECT count(*) n FROM wf_runs WHERE key = 'dep.child'`)).toBe(0);

      holds.get('dep.p2')!();
      await waitUntil(async () => (await stateOf(child)) === 'completed', { what: 'child completed' });
    } finally {
      holds.get('dep.p2')?.();
      await Promise.all(workers.splice(0).map((w) => w.stop()));
      await pool.end();
    }
    await expectRanAfterParents({ p1, p2, child }, { child: ['p1', 'p2'] });
  });

  it('a parent that dies sends its children (and theirs) to the DLQ as parent_dead, or cancels those with onParentDead cancel', async () => {
    const parent = await sluice.enqueue(step, { key: 'dead.parent', fail: true });
    const child = await sluice.enqueue(step, { key: 'dead.child' }, { dependsOn: [parent] });
    const grandchild = await sluice.enqueue(step, { key: 'dead.grandchild' }, { dependsOn: [child] });
    const cancelled = await sluice.enqueue(step, { key: 'dead.cancelled' }, { dependsOn: [parent], onParentDead: 'cancel' });
    const waited = sluice.waitFor(child, { timeoutMs: 20_000 }).catch((e: unknown) => e);

    await startStepWorker();
    await waitUntil(async () => (await stateOf(grandchild)) === 'dead' && (await stateOf(cancelled)) === 'cancelled', {
      what: 'children settled',
    });
    expect(await stateOf(parent)).toBe('dead');
    const { rows } = await db.pool.query(`SELECT id, reason, errors FROM sluice.dead_jobs WHERE id = ANY($1::bigint[]) ORDER BY id`, [[child, grandchild]]);
    expect(rows.map((r) => [Number(r.id), r.reason])).toEqual([
      [child, 'parent_dead'],
      [grandchild, 'parent_dead'],
    ]);
    expect(rows[0].errors.at(-1)).toMatchObject({ name: 'ParentDeadError' });
    expect((await db.pool.query(`SELECT state FROM sluice.job_history WHERE id = $1`, [cancelled])).rows[0].state).toBe('cancelled');
    // None of them ever ran.
    expect(await count(db.pool, `SELECT count(*) n FROM wf_runs WHERE key IN ('dead.child', 'dead.grandchild', 'dead.cancelled')`)).toBe(0);
    const err = await waited;
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).state).toBe('dead');
  });

  it('a delayed child whose parent completes before its runAt is promoted when due, not at the promoter\'s longest sleep', async () => {
    const parent = defineJob({ name: 'wf.delayed.parent', queue: 'wf.delayed', schema: z.object({}) });
    const child = defineJob({ name: 'wf.delayed.child', queue: 'wf.delayed', schema: z.object({}) });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const w = createWorker({ connectionString: db.url, pollIntervalMs: 200, handlers: [parent.handle(() => held), child.handle(() => {})] });
    workers.push(w);
    await w.start();
    const parentId = await sluice.enqueue(parent, {});
    const dueAt = Date.now() + 2_000;
    const childId = await sluice.enqueue(child, {}, { dependsOn: [parentId], runAt: new Date(dueAt) });
    await waitUntil(async () => (await stateOf(parentId)) === 'running', { what: 'the parent running' });
    release();
    await waitUntil(async () => (await stateOf(childId)) === 'scheduled', { what: 'the child released, still ahead of its runAt' });
    // The promoter's longest sleep is 30 s; one that heard of the child promotes it at its runAt.
    await waitUntil(async () => (await stateOf(childId)) === 'completed', { what: 'the child run', timeoutMs: 10_000 });
    const { rows } = await db.pool.query(`SELECT attempted_at FROM sluice.job_history WHERE id = $1`, [childId]);
    expect(rows[0].attempted_at.getTime()).toBeGreaterThanOrEqual(dueAt - 50);
  });

  it('a cancelled parent cancels its waiting children', async () => {
    const parent = await sluice.enqueue(step, { key: 'cx.parent' }, { delayMs: 60_000 });
    const child = await sluice.enqueue(step, { key: 'cx.child' }, { dependsOn: [parent] });
    expect(await sluice.cancel(parent)).toBe('scheduled');
    expect(await stateOf(child)).toBe('cancelled');
  });

  it("a child enqueued in the caller's transaction still runs when its parent completes before that transaction commits", async () => {
    const parentJob = defineJob({ name: 'wf.race.parent', queue: 'wf.race', schema: z.object({}) });
    const parent = await sluice.enqueue(parentJob, {});
    // The parent is running (claimed by hand, as any worker would).
    const { rows: claimed } = await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['wf.race'], ARRAY[1], 'by-hand', 60000)`);
    expect(claimed.map((r) => Number(r.id))).toEqual([parent]);
    await startStepWorker();

    const client = await db.pool.connect();
    let child: number;
    try {
      await client.query('BEGIN');
      child = await sluice.enqueue(step, { key: 'race.child' }, { dependsOn: [parent], tx: client });
      // The parent completes while the child's transaction is still open
      // (not awaited: a correct implementation may make it wait for the commit).
      const completion = db.pool.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])`, [parent]);
      await sleep(200);
      await client.query('COMMIT');
      await completion;
    } finally {
      client.release();
    }
    expect(await stateOf(parent)).toBe('completed');
    await waitUntil(async () => (await stateOf(child)) === 'completed', {
      timeoutMs: 5_000,
      what: 'child of a parent that completed while the child was being enqueued',
    }).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}; child is ${await stateOf(child)}`);
    });
  });

  it('depending on a completed job runs at once; on a missing id is JobNotFoundError; on a dead or cancelled job DependencyError', async () => {
    const done = await sluice.enqueue(step, { key: 'ok.parent' });
    await startStepWorker();
    await waitUntil(async () => (await stateOf(done)) === 'completed', { what: 'parent completed' });
    const after = await sluice.enqueue(step, { key: 'ok.child' }, { dependsOn: [done] });
    await waitUntil(async () => (await stateOf(after)) === 'completed', { what: 'child of a completed job completed' });

    const dead = await sluice.enqueue(step, { key: 'bad.parent', fail: true });
    await waitUntil(async () => (await stateOf(dead)) === 'dead', { what: 'parent dead' });
    const gone = await sluice.enqueue(step, { key: 'gone.parent' }, { delayMs: 60_000 });
    await sluice.cancel(gone);

    const before = await totalRows();
    const missing = await sluice.enqueue(step, { key: 'x' }, { dependsOn: [done, 987_654_321] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(JobNotFoundError);
    expect((missing as JobNotFoundError).ids).toEqual([987_654_321]);
    const onDead = await sluice.enqueue(step, { key: 'x' }, { dependsOn: [dead] }).catch((e: unknown) => e);
    expect(onDead).toBeInstanceOf(DependencyError);
    expect((onDead as Error).message).toContain(String(dead));
    await expect(sluice.enqueue(step, { key: 'x' }, { dependsOn: [gone] })).rejects.toBeInstanceOf(DependencyError);
    expect(await totalRows()).toBe(before);
  });

  // A parent that completed in a queue keeping no history is in no table: its
  // child was refused as depending on "no job with id", depending on how fast
  // a worker had finished the parent.
  it('a parent that completed in a queue that keeps no history counts as completed: its child goes in, available', async () => {
    const parentJob = defineJob({ name: 'wf.nohist.parent', queue: 'wf.nohist', schema: z.object({}) });
    const childJob = defineJob({ name: 'wf.nohist.child', queue: 'wf.nohist.c', schema: z.object({}) });
    await db.pool.query(`INSERT INTO sluice.queues (name, keep_history) VALUES ('wf.nohist', false)`);
    const parent = await sluice.enqueue(parentJob, {});
    await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['wf.nohist'], ARRAY[1], 'by-hand', 60000)`);
    await db.pool.query('SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])', [parent]);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.job_history WHERE id = $1', [parent])).toBe(0);
    const child = await sluice.enqueue(childJob, {}, { dependsOn: [parent] });
    expect(await stateOf(child)).toBe('available');
    // An id never handed out is still no job at all.
    const never = (await db.pool.query<{ n: string }>(`SELECT pg_sequence_last_value('sluice.jobs_id_seq') + 1000 AS n`)).rows[0]!.n;
    await expect(sluice.enqueue(childJob, {}, { dependsOn: [Number(never)] })).rejects.toBeInstanceOf(JobNotFoundError);
  });

  it('a parent cancelled while another completes, with waiting descendants in common: both end, without a deadlock', async () => {
    const parentJob = defineJob({ name: 'wf.shared.parent', queue: 'wf.shared', schema: z.object({}) });
    const childJob = defineJob({ name: 'wf.shared.child', queue: 'wf.shared.c', schema: z.object({}) });
    const b = await sluice.enqueue(parentJob, {});
    const { rows: claimed } = await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['wf.shared'], ARRAY[1], 'by-hand', 60000)`);
    expect(claimed.map((r) => Number(r.id))).toEqual([b]);
    const a = await sluice.enqueue(parentJob, {});
    const aChild = await sluice.enqueue(childJob, {}, { dependsOn: [a] });
    const both = await sluice.enqueue(childJob, {}, { dependsOn: [aChild, b] }); // A's grandchild, B's child
    const shared = await sluice.enqueue(childJob, {}, { dependsOn: [a, b] });
    expect(aChild < both && both < shared).toBe(true);

    const sessions = await Promise.all([db.pool.connect(), db.pool.connect(), db.pool.connect()]);
    const [holder, canceller, completer] = sessions;
    const waitsOnLock = async (c: pg.PoolClient) => {
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      return () =>
        waitUntil(
          async () => (await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`, [pid])).rowCount === 1,
          { what: `backend ${pid} waiting on a lock` },
        );
    };
    const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => `failed ${e.code}`);
    try {
      const cancellerWaits = await waitsOnLock(canceller);
      const completerWaits = await waitsOnLock(completer);
      // Another session (a cancel of it, an orphan sweep) holds the shared
      // child for a moment, so both ends queue on it.
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM sluice.jobs WHERE id = $1 FOR UPDATE', [shared]);
      const cancel = outcome(canceller.query('SELECT sluice.cancel($1)', [a]));
      await cancellerWaits();
      const complete = outcome(completer.query('SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])', [b]));
      await completerWaits();
      await holder.query('COMMIT');
      expect(await Promise.all([cancel, complete])).toEqual(['ok', 'ok']);
    } finally {
      for (const c of sessions) c.release();
    }
    expect({ a: await stateOf(a), b: await stateOf(b), aChild: await stateOf(aChild), both: await stateOf(both), shared: await stateOf(shared) })
      .toEqual({ a: 'cancelled', b: 'completed', aChild: 'cancelled', both: 'cancelled', shared: 'cancelled' });
  });
});

describe('flows', () => {
  it('a chain and a fan-out/fan-in run in dependency order', async () => {
    const steps: FlowStep[] = [
      { key: 'extract', job: step, payload: { key: 'fl.extract' } },
      { key: 'transform', job: step, payload: { key: 'fl.transform' }, after: ['extract'] },
      { key: 'a', job: step, payload: { key: 'fl.a' }, after: ['transform'] },
      { key: 'b', job: step, payload: { key: 'fl.b' }, after: ['transform'] },
      { key: 'c', job: step, payload: { key: 'fl.c' }, after: ['transform'] },
      { key: 'join', job: step, payload: { key: 'fl.join' }, after: ['a', 'b', 'c'] },
      { key: 'report', job: step, payload: { key: 'fl.report' }, after: ['join'], options: { priority: 'high' } },
    ];
    // Listed out of order on purpose: the flow orders them.
    const ids = await sluice.flow([steps[5]!, steps[6]!, steps[2]!, steps[0]!, steps[4]!, steps[1]!, steps[3]!]);
    expect(Object.keys(ids).sort()).toEqual(['a', 'b', 'c', 'extract', 'join', 'report', 'transform']);
    expect(await stateOf(ids.extract!)).toBe('available');
    for (const k of ['transform', 'a', 'b', 'c', 'join', 'report']) expect(await stateOf(ids[k]!), k).toBe('waiting');
    expect((await sluice.getJob(ids.join!)).dependsOn!.sort()).toEqual([ids.a!, ids.b!, ids.c!].sort());
    expect((await sluice.getJob(ids.report!)).priority).toBe(10);

    await startStepWorker(4);
    await waitUntil(async () => (await stateOf(ids.report!)) === 'completed', { what: 'flow completed' });
    await expectRanAfterParents(ids, {
      transform: ['extract'],
      a: ['transform'],
      b: ['transform'],
      c: ['transform'],
      join: ['a', 'b', 'c'],
      report: ['join'],
    });
  });

  it('is one transaction: a step that cannot be written (queue full) leaves nothing of the flow', async () => {
    await sluice.queues.configure('wf.full', { maxDepth: 1 });
    await sluice.enqueue(fullStep, { key: 'filler' });
    const before = await totalRows();
    const err = await sluice
      .flow([
        { key: 'one', job: step, payload: { key: 'rb.one' } },
        { key: 'two', job: step, payload: { key: 'rb.two' }, after: ['one'] },
        { key: 'three', job: fullStep, payload: { key: 'rb.three' }, after: ['two'] },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(await totalRows()).toBe(before);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE payload->>'key' LIKE 'rb.%'`)).toBe(0);
  });

  it("commits and rolls back with the caller's transaction", async () => {
    const flow: FlowStep[] = [
      { key: 'one', job: step, payload: { key: 'tx.one' }, options: { delayMs: 60_000 } },
      { key: 'two', job: step, payload: { key: 'tx.two' }, after: ['one'] },
    ];
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const ids = await sluice.flow(flow, { tx: client });
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = ANY($1::bigint[])`, [Object.values(ids)])).toBe(0);
      await client.query('ROLLBACK');
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE payload->>'key' LIKE 'tx.%'`)).toBe(0);

      await client.query('BEGIN');
      const kept = await sluice.flow(flow, { tx: client });
      await client.query('COMMIT');
      expect(await stateOf(kept.one!)).toBe('scheduled');
      expect(await stateOf(kept.two!)).toBe('waiting');
      expect((await sluice.getJob(kept.two!)).dependsOn).toEqual([kept.one]);
    } finally {
      client.release();
    }
  });

  it.each([
    ['steps', 'a cycle', [
      { key: 'a', job: step, payload: { key: 'v' }, after: ['b'] },
      { key: 'b', job: step, payload: { key: 'v' }, after: ['a'] },
    ]],
    ['steps', 'a step after itself', [{ key: 'a', job: step, payload: { key: 'v' }, after: ['a'] }]],
    ['steps.1.after', 'an unknown key', [
      { key: 'a', job: step, payload: { key: 'v' } },
      { key: 'b', job: step, payload: { key: 'v' }, after: ['nope'] },
    ]],
    ['steps.1.key', 'a duplicate key', [
      { key: 'a', job: step, payload: { key: 'v' } },
      { key: 'a', job: step, payload: { key: 'v' } },
    ]],
    ['steps.0.key', 'an empty key', [{ key: '', job: step, payload: { key: 'v' } }]],
    ['steps', 'no steps', []],
    ['steps.1.options.priority', 'a bad step option', [
      { key: 'a', job: step, payload: { key: 'v' } },
      { key: 'b', job: step, payload: { key: 'v' }, after: ['a'], options: { priority: 'urgent' } },
    ]],
    // A step's parents become its dependsOn, held to the same limit.
    ['steps.1.after', 'more parents than dependsOn takes', [
      { key: 'a', job: step, payload: { key: 'v' } },
      { key: 'b', job: step, payload: { key: 'v' }, after: Array<string>(1001).fill('a') },
    ]],
  ] as const)('a bad flow is a ValidationError on %s (%s) and writes nothing', async (field, _what, steps) => {
    const before = await totalRows();
    const err = await sluice.flow(steps as unknown as FlowStep[]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await totalRows()).toBe(before);
  });

  it('a bad payload in a later step writes nothing', async () => {
    const before = await totalRows();
    const err = await sluice
      .flow([
        { key: 'a', job: step, payload: { key: 'v' } },
        // @ts-expect-error the compiler refuses it too; this is what a caller without types gets
        { key: 'b', job: step, payload: { key: 42 }, after: ['a'] },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadValidationError);
    expect(await totalRows()).toBe(before);
  });
});

describe('batches', () => {
  const member = defineJob({
    name: 'wf.member',
    queue: 'wf.batch',
    schema: z.object({ n: z.number().int(), fail: z.boolean().optional() }),
    maxAttempts: 1,
  });
  const other = defineJob({ name: 'wf.member2', queue: 'wf.batch', schema: z.object({ label: z.string() }) });
  const done = defineJob({
    name: 'wf.batch.done',
    queue: 'wf.batch',
    schema: z.object({
      label: z.string(),
      batchId: z.number(),
      total: z.number(),
      completed: z.number(),
      dead: z.number(),
      cancelled: z.number(),
    }),
  });

  it('enqueues 2,500 members in chunks with a batch row; when all finish (some dead, one cancelled) onComplete runs with the counts', async () => {
    const items = Array.from({ length: 2_500 }, (_, i) =>
      i % 25 === 0 ? { job: other, payload: { label: `o${i}` } } : { job: member, payload: { n: i, fail: i === 7 || i === 1_501 } },
    );
    const { batchId, ids } = await sluice.enqueueBatch(items, { onComplete: { job: done, payload: { label: 'nightly' } } });
    expect(ids).toHaveLength(2_500);
    expect(new Set(ids).size).toBe(2_500);
    // Each id is the job of the item at its index, whatever chunk it went in.
    for (const i of [0, 1, 999, 1_000, 1_001, 1_999, 2_000, 2_499]) {
      expect((await sluice.getJob(ids[i]!)).payload, `item ${i}`).toEqual(items[i]!.payload);
      expect((await sluice.getJob(ids[i]!)).batchId).toBe(batchId);
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE batch_id = $1`, [batchId])).toBe(2_500);
    const row0 = (await db.pool.query(`SELECT total, completed, dead, cancelled, finished_at FROM sluice.batches WHERE id = $1`, [batchId])).rows[0];
    expect(row0).toEqual({ total: 2_500, completed: 0, dead: 0, cancelled: 0, finished_at: null });

    // Progress is visible in SQL as members finish.
    await sluice.cancel(ids[42]!);
    expect((await db.pool.query(`SELECT cancelled FROM sluice.batches WHERE id = $1`, [batchId])).rows[0].cancelled).toBe(1);

    const callbacks: unknown[] = [];
    const w = createWorker({
      connectionString: db.url,
      pollIntervalMs: 100,
      runScheduler: false,
      concurrency: 20,
      handlers: [
        member.handle(async (p) => {
          if (p.fail) throw new Error('member failed');
        }),
        other.handle(async () => {}),
        done.handle(async (p) => void callbacks.push(p)),
      ],
    });
    workers.push(w);
    const seen = new Set<number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await db.pool.query(`SELECT completed FROM sluice.batches WHERE id = $1`, [batchId]);
        seen.add(rows[0].completed);
        await sleep(10);
      }
    })();
    await w.start();
    await waitUntil(() => callbacks.length > 0, { timeoutMs: 30_000, what: 'batch callback' });
    sampling = false;
    await sampler;

    const row = (await db.pool.query(`SELECT total, completed, dead, cancelled, finished_at, callback_job_id FROM sluice.batches WHERE id = $1`, [batchId])).rows[0];
    expect(row).toMatchObject({ total: 2_500, completed: 2_497, dead: 2, cancelled: 1 });
    expect(row.finished_at).toBeInstanceOf(Date);
    expect(callbacks).toEqual([{ label: 'nightly', batchId, total: 2_500, completed: 2_497, dead: 2, cancelled: 1 }]);
    const callback = await sluice.getJob(Number(row.callback_job_id));
    expect(callback.name).toBe('wf.batch.done');
    await waitUntil(async () => (await stateOf(callback.id)) === 'completed', { what: 'callback completed' });
    // Members' ends were counted as they came, not all at once.
    expect([...seen].some((n) => n > 0 && n < 2_497), `completed counts seen: ${[...seen].slice(0, 20).join(',')}`).toBe(true);
    // One callback job was ever enqueued for the batch, and it ran once.
    expect(
      await count(db.pool, `SELECT (SELECT count(*) FROM sluice.jobs WHERE name = 'wf.batch.done') + (SELECT count(*) FROM sluice.job_history WHERE name = 'wf.batch.done') AS n`),
    ).toBe(1);
    expect(callbacks).toHaveLength(1);
  });

  it('a batch without onComplete is marked finished with no callback', async () => {
    const { batchId, ids } = await sluice.enqueueBatch([{ job: other, payload: { label: 'x' } }]);
    const w = createWorker({ connectionString: db.url, pollIntervalMs: 100, runScheduler: false, handlers: [other.handle(async () => {})] });
    workers.push(w);
    await w.start();
    await waitUntil(async () => (await stateOf(ids[0]!)) === 'completed', { what: 'member completed' });
    const row = (await db.pool.query(`SELECT completed, finished_at, callback_job_id FROM sluice.batches WHERE id = $1`, [batchId])).rows[0];
    expect(row.completed).toBe(1);
    expect(row.finished_at).toBeInstanceOf(Date);
    expect(row.callback_job_id).toBeNull();
  });

  it("rolls back with the caller's transaction: no batch row, no members", async () => {
    const batches = await count(db.pool, `SELECT count(*) n FROM sluice.batches`);
    const before = await totalRows();
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await sluice.enqueueBatch([{ job: other, payload: { label: 'rb' } }, { job: member, payload: { n: 1 } }], { tx: client, onComplete: { job: done, payload: { label: 'rb' } } });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.batches`)).toBe(batches);
    expect(await totalRows()).toBe(before);
  });

  it.each([
    ['items', 'no items', [], {}, ValidationError],
    ['items.1', 'an item that is not an object', [{ job: other, payload: { label: 'a' } }, null], {}, ValidationError],
    ['onComplete.payload', 'an array as callback payload', [{ job: other, payload: { label: 'a' } }], { onComplete: { job: done, payload: [1] } }, ValidationError],
    [null, 'a bad payload in the last item', [{ job: other, payload: { label: 'a' } }, { job: member, payload: { n: 'one' } }], {}, PayloadValidationError],
    [null, 'an unknown callback job', [{ job: other, payload: { label: 'a' } }], { onComplete: { job: 'no.such.job' } }, UnknownJobError],
  ] as const)('bad batch input (%s: %s) is refused and writes nothing', async (field, _what, items, options, type) => {
    const batches = await count(db.pool, `SELECT count(*) n FROM sluice.batches`);
    const before = await totalRows();
    const err = await sluice.enqueueBatch(items as never, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    if (field) expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.batches`)).toBe(batches);
    expect(await totalRows()).toBe(before);
  });
});

describe('bad input to the dependency options names the option and writes nothing', () => {
  it.each([
    [/^options\.dependsOn/, { dependsOn: [0] }],
    [/^options\.dependsOn/, { dependsOn: [-3] }],
    [/^options\.dependsOn/, { dependsOn: [1.5] }],
    [/^options\.dependsOn/, { dependsOn: ['1'] }],
    [/^options\.dependsOn/, { dependsOn: 5 }],
    [/^options\.dependsOn/, { dependsOn: Array.from({ length: 1_001 }, (_, i) => i + 1) }],
    [/^options\.onParentDead$/, { dependsOn: [1], onParentDead: 'ignore' }],
  ])('enqueue %s', async (field, options) => {
    const before = await totalRows();
    const err = await sluice.enqueue(step, { key: 'bad' }, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toMatch(field);
    expect(await totalRows()).toBe(before);
  });

  it('SQL enqueue refuses an unknown on_parent_dead', async () => {
    const before = await totalRows();
    await expect(db.pool.query(`SELECT sluice.enqueue('wf.step', '{"key":"s"}', on_parent_dead => 'ignore')`)).rejects.toMatchObject({ code: '22023' });
    expect(await totalRows()).toBe(before);
  });
});

describe('follow-ups that must not be refused or lost', () => {
  const parentJob = defineJob({ name: 'wf.end.parent', queue: 'wf.end.p', schema: z.object({}), maxAttempts: 1 });
  const childJob = defineJob({ name: 'wf.end.child', queue: 'wf.end.c', schema: z.object({}) });
  const member = defineJob({ name: 'wf.end.member', queue: 'wf.end.m', schema: z.object({}) });
  const callback = defineJob({ name: 'wf.end.cb', queue: 'wf.end.cb', schema: z.object({}).passthrough() });

  /** Claims every available job of the queue by hand, as a worker would; returns their ids. */
  async function claimAll(queue: string): Promise<number[]> {
    const { rows } = await db.pool.query(`SELECT id FROM sluice.claim(ARRAY[$1], ARRAY[100], 'by-hand', 600000)`, [queue]);
    return rows.map((r) => Number(r.id));
  }

  /** The callback queue, bounded and full. */
  async function fillCallbackQueue(): Promise<void> {
    await sluice.queues.configure('wf.end.cb', { maxDepth: 1, overflow: 'reject' });
    if ((await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'wf.end.cb'`)) === 0) {
      await sluice.enqueue(callback, {}, { delayMs: 600_000 });
    }
  }

  it('two parents of one child completing in overlapping transactions release it when the second commits', async () => {
    const p1 = await sluice.enqueue(parentJob, {});
    const p2 = await sluice.enqueue(parentJob, {});
    const c = await sluice.enqueue(childJob, {}, { dependsOn: [p1, p2] });
    expect(await claimAll('wf.end.p')).toEqual([p1, p2]);
    const a = await db.pool.connect();
    const b = await db.pool.connect();
    try {
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])`, [p1]);
      // Not awaited: the second may wait for the first to commit.
      const second = b.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])`, [p2]);
      await sleep(100);
      await a.query('COMMIT');
      await second;
      await b.query('COMMIT');
    } finally {
      a.release();
      b.release();
    }
    expect([await stateOf(p1), await stateOf(p2)]).toEqual(['completed', 'completed']);
    // Released by the completions, not left for the promoter's orphan sweep.
    expect(await stateOf(c)).toBe('available');
  });

  it("the last member's completion or cancellation is not refused because the callback's queue is full", async () => {
    await fillCallbackQueue();
    const done = await sluice.enqueueBatch([{ job: member, payload: {} }], { onComplete: { job: callback } });
    expect(await claimAll('wf.end.m')).toEqual(done.ids);
    const { rows } = await db.pool.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1]) AS id`, [done.ids[0]]);
    expect(rows.map((r) => Number(r.id))).toEqual(done.ids);
    const cancelled = await sluice.enqueueBatch([{ job: member, payload: {} }], { onComplete: { job: callback } });
    expect(await sluice.cancel(cancelled.ids[0]!)).toBe('available');

    const { rows: batches } = await db.pool.query(
      `SELECT b.completed, b.cancelled, b.finished_at IS NOT NULL AS finished, j.queue
       FROM sluice.batches b JOIN sluice.jobs j ON j.id = b.callback_job_id WHERE b.id = ANY($1::bigint[]) ORDER BY b.id`,
      [[done.batchId, cancelled.batchId]],
    );
    // Each callback went into its queue past max_depth.
    expect(batches).toEqual([
      { completed: 1, cancelled: 0, finished: true, queue: 'wf.end.cb' },
      { completed: 0, cancelled: 1, finished: true, queue: 'wf.end.cb' },
    ]);
    // The bound still refuses everyone else.
    await expect(sluice.enqueue(callback, {})).rejects.toBeInstanceOf(QueueFullError);
  });

  it.each([
    ['drop_newest', defineJob({ name: 'wf.end.cb.newest', queue: 'wf.end.cb.newest', schema: z.object({}).passthrough() })],
    ['drop_oldest', defineJob({ name: 'wf.end.cb.oldest', queue: 'wf.end.cb.oldest', schema: z.object({}).passthrough() })],
  ] as const)("the last member's end enqueues the callback into a full %s queue, dropping neither it nor another job", async (overflow, cb) => {
    await sluice.queues.configure(cb.queue!, { maxDepth: 1, overflow });
    const waiting = await sluice.enqueue(cb, {}, { delayMs: 600_000 });
    const { batchId, ids } = await sluice.enqueueBatch([{ job: member, payload: {} }], { onComplete: { job: cb } });
    expect(await claimAll('wf.end.m')).toEqual(ids);
    await db.pool.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])`, [ids[0]]);

    const { rows } = await db.pool.query(`SELECT finished_at IS NOT NULL AS finished, callback_job_id FROM sluice.batches WHERE id = $1`, [batchId]);
    expect(rows[0].finished).toBe(true);
    expect(await stateOf(Number(rows[0].callback_job_id))).toBe('available');
    expect(await stateOf(waiting)).toBe('scheduled');
  });

  it.each([
    ['died', 'dead'],
    ['was cancelled', 'cancelled'],
  ] as const)(
    'a child whose other parent %s while it was being enqueued goes down with it when its last parent completes, instead of running',
    async (_how, end) => {
      const p1 = await sluice.enqueue(parentJob, {});
      const p2 = await sluice.enqueue(parentJob, {});
      expect(await claimAll('wf.end.p')).toEqual([p1, p2]);
      const client = await db.pool.connect();
      let c: number;
      let g: number;
      try {
        await client.query('BEGIN');
        // Both parents are live when the producer looks: the child waits.
        c = await sluice.enqueue(childJob, {}, { dependsOn: [p1, p2], tx: client });
        g = await sluice.enqueue(childJob, {}, { dependsOn: [c], tx: client });
        // p1 ends meanwhile; its follow-up cannot see the uncommitted child.
        if (end === 'dead') {
          await db.pool.query(`SELECT * FROM sluice.job_fail_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"message":"boom"}'::jsonb], ARRAY[true])`, [p1]);
        } else {
          expect(await sluice.cancel(p1)).toBe('running');
        }
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      expect([await stateOf(p1), await stateOf(c)]).toEqual([end, 'waiting']);

      // p2 completes before the promoter's orphan sweep comes round.
      await db.pool.query(`SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])`, [p2]);

      expect([await stateOf(p2), await stateOf(c), await stateOf(g)]).toEqual(['completed', end, end]);
      if (end === 'dead') {
        expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = ANY($1::bigint[]) AND reason = 'parent_dead'`, [[c, g]])).toBe(2);
      }
    },
  );

  it('a job whose acknowledgement is being retried keeps its lease: it is not rescued and run again', async () => {
    // A pool whose completions fail for a while, as when the database refuses them.
    let refuse = true;
    class RefusingClient extends pg.Client {
      override query(...args: unknown[]): never {
        const config = args[0] as { name?: unknown } | undefined;
        if (refuse && config?.name === 'sluice_job_complete_many') return Promise.reject(new Error('refused by the test')) as never;
        return (super.query as (...a: unknown[]) => unknown)(...args) as never;
      }
    }
    const pool = new pg.Pool({ connectionString: db.url, max: 4, Client: RefusingClient });
    const runner = defineJob({ name: 'wf.end.runner', queue: 'wf.end.r', schema: z.object({}), maxAttempts: 5 });
    const attempts: number[] = [];
    const w = createWorker({
      pool,
      pollIntervalMs: 100,
      workerDeadAfterMs: 1_500,
      queues: ['wf.end.r'],
      handlers: [runner.handle(async (_p, ctx) => void attempts.push(ctx.job.attempt))],
    });
    workers.push(w);
    try {
      await w.start();
      const id = await sluice.enqueue(runner, {});
      await waitUntil(() => attempts.length > 0, { what: 'the first run' });
      // Twice the lease: the rescuer (this worker leads) would have taken it back by now.
      await sleep(3_000);
      expect(await stateOf(id)).toBe('running');
      refuse = false;
      await waitUntil(async () => (await stateOf(id)) === 'completed', { what: 'the completion, once written' });
      expect(attempts).toEqual([1]);
    } finally {
      await w.stop();
      await pool.end();
    }
  });

  it('a chain of 400 waiting steps follows its root into the DLQ, or out by cancellation', async () => {
    const link = defineJob({ name: 'wf.end.link', queue: 'wf.end.chain', schema: z.object({ i: z.number() }) });
    const n = 400;
    const chain = async (root: number, onParentDead: 'dead' | 'cancel') => {
      const ids = [root];
      for (let i = 1; i < n; i++) ids.push(await sluice.enqueue(link, { i }, { dependsOn: [ids[i - 1]!], onParentDead }));
      return ids;
    };
    const dying = await chain(await sluice.enqueue(parentJob, {}), 'dead');
    expect(await claimAll('wf.end.p')).toEqual([dying[0]]);
    const { rows } = await db.pool.query(
      `SELECT outcome FROM sluice.job_fail_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"message":"x"}'::jsonb], ARRAY[true])`,
      [dying[0]],
    );
    expect(rows.map((r) => r.outcome)).toEqual(['dead']);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = ANY($1::bigint[]) AND reason = 'parent_dead'`, [dying])).toBe(n - 1);

    const cancelled = await chain(await sluice.enqueue(childJob, {}, { delayMs: 600_000 }), 'cancel');
    expect(await sluice.cancel(cancelled[0]!)).toBe('scheduled');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = ANY($1::bigint[]) AND state = 'cancelled'`, [cancelled])).toBe(n);
  });

  it('a parent that died while its child was being enqueued is not taken for completed once purged', async () => {
    const p = await sluice.enqueue(parentJob, {});
    expect(await claimAll('wf.end.p')).toEqual([p]);
    const client = await db.pool.connect();
    let c: number;
    try {
      await client.query('BEGIN');
      // The producer sees its parent live: the child waits.
      c = await sluice.enqueue(childJob, {}, { dependsOn: [p], tx: client });
      // The parent dies meanwhile; its follow-up cannot see the uncommitted child.
      await db.pool.query(`SELECT * FROM sluice.job_fail_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"message":"boom"}'::jsonb], ARRAY[true])`, [p]);
      // A purge now would erase how the parent ended: it waits for a later one.
      expect(Number((await db.pool.query(`SELECT sluice.dead_purge(ids => ARRAY[$1::bigint]) AS n`, [p])).rows[0].n)).toBe(0);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await stateOf(c)).toBe('waiting');
    // A purge after the commit sends the child down with its parent.
    expect(Number((await db.pool.query(`SELECT sluice.dead_purge(ids => ARRAY[$1::bigint]) AS n`, [p])).rows[0].n)).toBe(1);
    await db.pool.query(`SELECT sluice.release_orphaned_waiting(1000)`);
    expect(await stateOf(c)).toBe('dead');
  });

  it('a cancelled parent pruned from history takes its waiting child with it', async () => {
    const q = 'wf.end.pruned';
    const p = await sluice.enqueue(defineJob({ name: 'wf.end.pruned', queue: q, schema: z.object({}) }), {}, { delayMs: 600_000 });
    await sluice.queues.configure(q, { retentionMs: 1 });
    const client = await db.pool.connect();
    let c: number;
    try {
      await client.query('BEGIN');
      c = await sluice.enqueue(childJob, {}, { dependsOn: [p], tx: client });
      expect(await sluice.cancel(p)).toBe('scheduled');
      await sleep(10);
      await db.pool.query(`SELECT sluice.prune_history(10000)`);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = $1`, [p])).toBe(1);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await db.pool.query(`SELECT sluice.prune_history(10000)`);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = $1`, [p])).toBe(0);
    await db.pool.query(`SELECT sluice.release_orphaned_waiting(1000)`);
    expect(await stateOf(c)).toBe('cancelled');
  });
});
