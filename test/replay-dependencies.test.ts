// Replaying dead jobs that depended on parents (sluice.dead_replay,
// drizzle/functions/dead-jobs/replay.sql). A dead job keeps its depends_on;
// a replay puts it back waiting while a parent is still to complete (live,
// or replayed in the same call), available once every parent has completed,
// and refuses it (ReplayDependencyError, nothing replayed) while a parent
// that ended without completing is not replayed with it.
import { expect, it } from 'vitest';
import { z } from 'zod';
import { main } from '../packages/sluice/src/cli/main.js';
import { DependencyError, JobNotFoundError, ReplayDependencyError, defineJob } from '../packages/sluice/src/index.js';
import { useSuite } from './helpers/suite.js';

const s = useSuite();

const SECRET = 'payload-secret-4111';
/** Job types of their own for one test: parent and child in queue rd.<tag>, other in rd.<tag>.other; one attempt each. */
function flow(tag: string) {
  const queue = `rd.${tag}`;
  const schema = z.object({ note: z.string() });
  return {
    queue,
    otherQueue: `${queue}.other`,
    parent: defineJob({ name: `${queue}.parent`, queue, schema, maxAttempts: 1 }),
    child: defineJob({ name: `${queue}.child`, queue, schema, maxAttempts: 1 }),
    other: defineJob({ name: `${queue}.other`, queue: `${queue}.other`, schema, maxAttempts: 1 }),
  };
}

/** Claims every available job of the queue by hand, as a worker would; returns their ids. */
async function claimAll(queue: string): Promise<number[]> {
  const { rows } = await s.db.pool.query(`SELECT id FROM sluice.claim(ARRAY[$1], ARRAY[100], 'by-hand', 600000)`, [queue]);
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

async function complete(id: number): Promise<void> {
  const { rows } = await s.db.pool.query(
    `SELECT sluice.job_complete_many(ARRAY[id], ARRAY[attempt]) AS id FROM sluice.jobs WHERE id = $1 AND state = 'running'`,
    [id],
  );
  expect(rows.map((r) => Number(r.id))).toEqual([id]);
}

/** The running job fails for good: it goes to the dead-letter queue, and its waiting children with it. */
async function kill(id: number): Promise<void> {
  await s.db.pool.query(
    `SELECT * FROM sluice.job_fail_many(ARRAY[$1::bigint], ARRAY[1], ARRAY['{"message":"provider down"}'::jsonb], ARRAY[true])`,
    [id],
  );
  expect((await s.sluice.getJob(id)).state).toBe('dead');
}

const stateOf = async (id: number) => (await s.sluice.getJob(id)).state;

/** `sluice dlq ...` in this process, as an operator runs it. */
async function dlq(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['dlq', ...args, '--database-url', s.db.url], (x) => out.push(x), (x) => err.push(x));
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

it('a parent and its parent_dead child replayed together: the child waits for the parent instead of running at once', async () => {
  const f = flow('together');
  const p = await s.sluice.enqueue(f.parent, { note: SECRET });
  const c = await s.sluice.enqueue(f.child, { note: SECRET }, { dependsOn: [p] });
  expect(await claimAll(f.queue)).toEqual([p]);
  await kill(p);
  expect(await s.sluice.getJob(c)).toMatchObject({ state: 'dead', dependsOn: [p] });

  expect((await s.sluice.replayDead([p, c])).sort((a, b) => a - b)).toEqual([p, c]);
  expect(await s.sluice.getJob(c)).toMatchObject({ state: 'waiting', dependsOn: [p] });

  // Only the parent may be handed to a worker; the child runs once it has completed.
  expect(await claimAll(f.queue)).toEqual([p]);
  await complete(p);
  expect(await claimAll(f.queue)).toEqual([c]);
});

it('sluice dlq replay --queue puts a dead chain back in order: each job runs after the one before has completed', async () => {
  const f = flow('chain');
  const root = await s.sluice.enqueue(f.parent, { note: 'root' });
  const mid = await s.sluice.enqueue(f.child, { note: 'mid' }, { dependsOn: [root] });
  const leaf = await s.sluice.enqueue(f.child, { note: 'leaf' }, { dependsOn: [mid] });
  expect(await claimAll(f.queue)).toEqual([root]);
  await kill(root);
  expect([await stateOf(mid), await stateOf(leaf)]).toEqual(['dead', 'dead']);

  expect(JSON.parse((await dlq('replay', '--queue', f.queue, '--json')).stdout)).toEqual({ replayed: [root, mid, leaf] });
  expect(await claimAll(f.queue)).toEqual([root]);
  await complete(root);
  expect(await claimAll(f.queue)).toEqual([mid]);
  await complete(mid);
  expect(await claimAll(f.queue)).toEqual([leaf]);
});

it('a child replayed alone while its parent is still dead: refused with ReplayDependencyError naming both, nothing replayed', async () => {
  const f = flow('alone');
  const p = await s.sluice.enqueue(f.parent, { note: SECRET });
  const c = await s.sluice.enqueue(f.child, { note: SECRET }, { dependsOn: [p] });
  const lone = await s.sluice.enqueue(f.other, { note: 'lone' });
  expect(await claimAll(f.queue)).toEqual([p]);
  await kill(p);
  expect(await claimAll(f.otherQueue)).toEqual([lone]);
  await kill(lone);

  // All or nothing: the job without parents beside it is not replayed either.
  const err = await s.sluice.replayDead([lone, c]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ReplayDependencyError);
  expect(err).toBeInstanceOf(DependencyError);
  expect(err).toMatchObject({ blocked: [{ jobId: c, parentId: p, parentState: 'dead' }], count: 1 });
  expect((err as Error).message).toContain(`job ${c} on dead job ${p}`);
  expect((err as Error).message).not.toContain(SECRET);
  expect([await stateOf(p), await stateOf(c), await stateOf(lone)]).toEqual(['dead', 'dead', 'dead']);

  // The operator's view: exit 1, the error named, the job still dead.
  const cli = await dlq('replay', String(c));
  expect(cli.code).toBe(1);
  expect(cli.stderr).toContain('ReplayDependencyError');
  expect(cli.stderr).toContain(`job ${c} on dead job ${p}`);
  expect(await stateOf(c)).toBe('dead');

  // The way out the error names first: replay the parent with it.
  expect((await s.sluice.replayDead([lone, p, c])).sort((a, b) => a - b)).toEqual([p, c, lone]);
  expect(await stateOf(c)).toBe('waiting');
});

it('a dead parent purged: its child replays available and runs without it', async () => {
  const f = flow('purge');
  const p = await s.sluice.enqueue(f.parent, { note: 'p' });
  const c = await s.sluice.enqueue(f.child, { note: 'c' }, { dependsOn: [p] });
  expect(await claimAll(f.queue)).toEqual([p]);
  await kill(p);
  expect(JSON.parse((await dlq('purge', String(p), '--json')).stdout)).toEqual({ purged: 1 });
  expect(await s.sluice.replayDead([c])).toEqual([c]);
  expect(await claimAll(f.queue)).toEqual([c]);
});

it('a child with a second parent still live waits for it too, replayed with its dead parent or after it', async () => {
  // c1 is replayed with its dead parent; c2 alone, once its parent has run again and completed.
  const f = flow('two');
  const p1 = await s.sluice.enqueue(f.parent, { note: 'p1' });
  const p2 = await s.sluice.enqueue(f.other, { note: 'p2' });
  const c1 = await s.sluice.enqueue(f.child, { note: 'c1' }, { dependsOn: [p1, p2] });
  const q1 = await s.sluice.enqueue(f.parent, { note: 'q1' });
  const c2 = await s.sluice.enqueue(f.child, { note: 'c2' }, { dependsOn: [q1, p2] });
  expect(await claimAll(f.queue)).toEqual([p1, q1]);
  await kill(p1);
  await kill(q1);
  expect([await stateOf(c1), await stateOf(c2)]).toEqual(['dead', 'dead']);

  expect((await s.sluice.replayDead([p1, c1])).sort((a, b) => a - b)).toEqual([p1, c1]);
  expect(await s.sluice.replayDead([q1])).toEqual([q1]);
  expect(await claimAll(f.queue)).toEqual([p1, q1]);
  await complete(p1);
  await complete(q1);
  expect(await s.sluice.replayDead([c2])).toEqual([c2]);
  // Their first parents have completed; p2 is still live.
  expect(await claimAll(f.queue)).toEqual([]);
  expect([await stateOf(c1), await stateOf(c2)]).toEqual(['waiting', 'waiting']);

  expect(await claimAll(f.otherQueue)).toEqual([p2]);
  await complete(p2);
  expect(await claimAll(f.queue)).toEqual([c1, c2]);
});

it('a parent cancelled: the child is refused, the parent named as cancelled, and its dead parent stays dead', async () => {
  const f = flow('cancel');
  const p1 = await s.sluice.enqueue(f.parent, { note: 'p1' });
  const p2 = await s.sluice.enqueue(f.other, { note: 'p2' });
  const c = await s.sluice.enqueue(f.child, { note: 'c' }, { dependsOn: [p1, p2] });
  expect(await claimAll(f.queue)).toEqual([p1]);
  await kill(p1);
  expect(await s.sluice.cancel(p2)).toBe('available');

  const err = await s.sluice.replayDead([p1, c]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ReplayDependencyError);
  expect(err).toMatchObject({ blocked: [{ jobId: c, parentId: p2, parentState: 'cancelled' }], count: 1 });
  expect([await stateOf(p1), await stateOf(c)]).toEqual(['dead', 'dead']);
});

it('a child that died on its own after its parents completed replays available, a parent in history or gone with a queue that keeps none', async () => {
  const f = flow('own');
  await s.sluice.queues.configure(f.otherQueue, { keepHistory: false });
  const kept = await s.sluice.enqueue(f.parent, { note: 'kept' });
  const gone = await s.sluice.enqueue(f.other, { note: 'gone' });
  const c = await s.sluice.enqueue(f.child, { note: 'c' }, { dependsOn: [kept, gone] });
  expect(await claimAll(f.queue)).toEqual([kept]);
  expect(await claimAll(f.otherQueue)).toEqual([gone]);
  await complete(kept);
  await complete(gone);
  expect(await s.sluice.getJob(gone).catch((e: unknown) => e)).toBeInstanceOf(JobNotFoundError);
  expect(await claimAll(f.queue)).toEqual([c]);
  await kill(c);

  expect(await s.sluice.replayDead([c])).toEqual([c]);
  expect(await claimAll(f.queue)).toEqual([c]);
});
