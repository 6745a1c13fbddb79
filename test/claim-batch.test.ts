// The worker's claim comes back as one JSON text the server writes by
// concatenation (packages/sluice/src/sql/job-leases.ts, jobClaim): every job
// must arrive exactly as stored, whatever its payload holds and whichever
// characters its name and queue use.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobClaim } from '../packages/sluice/src/sql/job-leases.js';
import { createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

const PAYLOADS: unknown[] = [
  { quote: 'a "quoted" \\ back\\slash', nl: 'line\nbreak\ttab', uni: 'zürich ✓ 😀', ctl: '\u0001' },
  ['array', 1, 2.5, -3e-7, true, null, { nested: [[]] }],
  'just a string with "quotes"',
  12345678901234,
  false,
  null,
  {},
];

describe('the claim batch', () => {
  it('carries every job as stored: payload, name, queue, numbers, times and lease', async () => {
    const queue = 'Claim.batch:q-1';
    const names = ['claim.batch:A-z_0.9', '0-leading.digit'];
    const { rows: enqueued } = await db.pool.query<{ id: string }>(
      `SELECT sluice.enqueue($1, p, queue => $2, priority => $3::smallint, max_attempts => 7, timeout_ms => t) AS id
       FROM unnest($4::jsonb[], $5::integer[]) AS x(p, t)`,
      [names[0], queue, -5, PAYLOADS.map((p) => JSON.stringify(p)), PAYLOADS.map((_, i) => (i % 2 ? 1500 : null))],
    );
    await db.pool.query(`SELECT sluice.enqueue($1, '{"k": 1}', queue => $2, priority => 3::smallint)`, [names[1], queue]);

    const claimed = await jobClaim(db.pool, { queues: [queue], limits: [100], workerId: 'claim-batch', leaseMs: 60_000 });
    const { rows: stored } = await db.pool.query<{
      id: string; name: string; queue: string; payload: unknown; priority: number; attempt: number; max_attempts: number;
      timeout_ms: number | null; created_ms: number; lease: string; run_at_us: string;
    }>(
      `SELECT id, name, queue, payload, priority, attempt, max_attempts, timeout_ms,
              date_part('epoch', created_at) * 1000 AS created_ms, sluice.lease_token(attempted_at) AS lease,
              (date_part('epoch', run_at) * 1000000)::bigint AS run_at_us
       FROM sluice.jobs WHERE queue = $1 ORDER BY priority DESC, run_at, id`,
      [queue],
    );
    expect(stored).toHaveLength(PAYLOADS.length + 1);
    expect(claimed.map((c) => c.id)).toEqual(stored.map((s) => Number(s.id)));
    expect(stored.slice(1).map((s) => Number(s.id))).toEqual(enqueued.map((e) => Number(e.id)));
    claimed.forEach((c, i) => {
      const s = stored[i]!;
      expect(c).toEqual({
        id: Number(s.id),
        name: s.name,
        queue: s.queue,
        payload: s.payload,
        priority: s.priority,
        attempt: 1,
        max_attempts: s.max_attempts,
        timeout_ms: s.timeout_ms,
        created_at: new Date(s.created_ms),
        lease: Number(s.lease),
        run_at_us: Number(s.run_at_us),
      });
    });
    expect(claimed.slice(1).map((c) => c.payload)).toEqual(PAYLOADS);
  });

  it('is empty when nothing is available', async () => {
    expect(await jobClaim(db.pool, { queues: ['claim.batch.empty'], limits: [10], workerId: 'claim-batch', leaseMs: 60_000 })).toEqual([]);
  });
});

describe('bad input to the claim', () => {
  // A job claimed without a lease (locked_until NULL) would stay running with
  // no rescuer ever freeing it; the claim refuses before writing anything.
  it.each([
    ['a NULL lease', [['claim.bad'], [1], 'claim-batch', null]],
    ['a zero lease', [['claim.bad'], [1], 'claim-batch', 0]],
    ['a negative lease', [['claim.bad'], [1], 'claim-batch', -1]],
    ['a NULL worker', [['claim.bad'], [1], null, 60_000]],
    ['an empty worker', [['claim.bad'], [1], '', 60_000]],
    ['fewer limits than queues', [['claim.bad', 'claim.bad-2'], [1], 'claim-batch', 60_000]],
    ['more limits than queues', [['claim.bad'], [1, 1], 'claim-batch', 60_000]],
    ['resume keys for fewer queues', [['claim.bad', 'claim.bad-2'], [1, 1], 'claim-batch', 60_000, [0], [0], [1]]],
  ])('%s raises 22023 and claims nothing', async (_what, args) => {
    const { rows } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('claim.bad.job', '{}', queue => 'claim.bad') AS id`);
    const id = rows[0]!.id;
    await expect(
      db.pool.query(
        `SELECT * FROM sluice.claim($1::text[], $2::integer[], $3, $4, $5::smallint[], $6::bigint[], $7::bigint[])`,
        [...args, null, null, null].slice(0, 7),
      ),
    ).rejects.toMatchObject({ code: '22023', message: expect.stringMatching(/^sluice\.claim: /) });
    const { rows: job } = await db.pool.query(`SELECT state, attempt, locked_by, locked_until FROM sluice.jobs WHERE id = $1`, [id]);
    expect(job).toEqual([{ state: 'available', attempt: 0, locked_by: null, locked_until: null }]);
    await db.pool.query(`SELECT sluice.cancel_many(ARRAY[$1]::bigint[])`, [id]);
  });
});
