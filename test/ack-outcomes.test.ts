// sluice.ack_outcomes answers for acknowledgements whose first write went
// unanswered and whose retry applied nothing: what did that first write do?
// It must name the claim, not only the attempt number (a claim lost in a crash
// is made again with the same number), and it must not call a completion
// applied where nothing left can tell.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobAckOutcomes, jobClaim, jobCompleteMany } from '../packages/sluice/src/sql/job-leases.js';
import { createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

async function enqueue(queue: string): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('ack.outcome', '{}', queue => $1) AS id`, [queue]);
  return Number(rows[0]!.id);
}

async function claimOne(queue: string, workerId: string) {
  const [job] = await jobClaim(db.pool, { queues: [queue], limits: [1], workerId, leaseMs: 60_000 });
  expect(job).toBeDefined();
  return job!;
}

describe('sluice.ack_outcomes', () => {
  it('reports completed only for the claim that completed, not for a lost claim of the same attempt number', async () => {
    const queue = 'ack.lost-claim';
    const id = await enqueue(queue);
    // Worker A's claim, lost as a crash would lose it (claims commit asynchronously).
    const client = await db.pool.connect();
    let lost: Awaited<ReturnType<typeof claimOne>>;
    try {
      await client.query('BEGIN');
      [lost] = (await jobClaim(client, { queues: [queue], limits: [1], workerId: 'worker-a', leaseMs: 60_000 })) as [Awaited<ReturnType<typeof claimOne>>];
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    // Worker B claims the job again, with the same attempt number, and completes it.
    const redone = await claimOne(queue, 'worker-b');
    expect(redone.attempt).toBe(lost!.attempt);
    expect(redone.lease).not.toBe(lost!.lease);
    expect([...(await jobCompleteMany(db.pool, { ids: [id], attempts: [redone.attempt], results: [null], runMs: [1], workerId: 'worker-b', leases: [redone.lease] }))]).toEqual([id]);

    // A's answer is refused, and asked about, it is not B's completion.
    expect([...(await jobCompleteMany(db.pool, { ids: [id], attempts: [lost!.attempt], results: [null], runMs: [1], workerId: 'worker-a', leases: [lost!.lease] }))]).toEqual([]);
    const asked = (lease: number) => jobAckOutcomes(db.pool, [{ id, attempt: lost!.attempt, queue, errorAt: null, lease }]);
    expect([...(await asked(lost!.lease))]).toEqual([]);
    expect([...(await asked(redone.lease))]).toEqual([[`${id}:${redone.attempt}`, 'completed']]);
  });

  it('answers unknown, not completed, for a completion in a queue without history whose job another attempt completed after a rescue', async () => {
    const queue = 'ack.no-history';
    await db.pool.query(`INSERT INTO sluice.queues (name, keep_history) VALUES ($1, false)`, [queue]);
    const id = await enqueue(queue);
    const first = await claimOne(queue, 'worker-a');
    // A's lease lapses (its completion and its beats went unanswered) and the job is rescued.
    await db.pool.query(`UPDATE sluice.jobs SET locked_until = now() - interval '1 minute' WHERE id = $1`, [id]);
    const { rows: rescued } = await db.pool.query<{ id: string; outcome: string }>(`SELECT id, outcome FROM sluice.rescue_expired(100)`);
    expect(rescued).toEqual([{ id: String(id), outcome: 'rescued' }]);
    const second = await claimOne(queue, 'worker-b');
    expect(second.attempt).toBe(first.attempt + 1);
    await jobCompleteMany(db.pool, { ids: [id], attempts: [second.attempt], results: [null], runMs: [1], workerId: 'worker-b', leases: [second.lease] });
    expect((await db.pool.query(`SELECT 1 FROM sluice.jobs WHERE id = $1 UNION ALL SELECT 1 FROM sluice.job_history WHERE id = $1`, [id])).rowCount).toBe(0);

    // A's retried completion applies nothing, and what its first write did cannot be told.
    expect([...(await jobCompleteMany(db.pool, { ids: [id], attempts: [first.attempt], results: [null], runMs: [1], workerId: 'worker-a', leases: [first.lease] }))]).toEqual([]);
    expect([...(await jobAckOutcomes(db.pool, [{ id, attempt: first.attempt, queue, errorAt: null, lease: first.lease }]))]).toEqual([
      [`${id}:${first.attempt}`, 'unknown'],
    ]);
  });

  it('still finds a committed completion of that very claim in history', async () => {
    const queue = 'ack.history';
    const id = await enqueue(queue);
    const job = await claimOne(queue, 'worker-a');
    await jobCompleteMany(db.pool, { ids: [id], attempts: [job.attempt], results: [null], runMs: [1], workerId: 'worker-a', leases: [job.lease] });
    expect([...(await jobAckOutcomes(db.pool, [{ id, attempt: job.attempt, queue, errorAt: null, lease: job.lease }]))]).toEqual([
      [`${id}:${job.attempt}`, 'completed'],
    ]);
  });
});
