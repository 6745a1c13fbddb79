// A claim's answer larger than one JavaScript string can hold. The jobs of a
// claim come back as JSON text; hundreds of payloads near the 1 MiB default
// limit pass V8's string limit (about 512 Mi characters), which node-postgres
// hits inside its socket handler: the worker process died with the claim
// committed, and its jobs went to the rescuer, attempt after attempt, until
// dead without having run. (Own file: before the fix it took its process.)
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jobClaim } from '../packages/sluice/src/sql/job-leases.js';
import { createTestDb, type TestDb } from './helpers/db.js';

const JOBS = 560;
const PAYLOAD_CHARS = 1_000_000;
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

it(`a claim of ${JOBS} jobs of ${PAYLOAD_CHARS}-character payloads (over 512 Mi characters in all) returns every job whole, in claim order`, async () => {
  expect(JOBS * PAYLOAD_CHARS).toBeGreaterThan(2 ** 29);
  await db.pool.query(`INSERT INTO sluice.queues (name) VALUES ('big')`);
  // Built by the server (and stored compressed): only the claim's answer is large.
  await db.pool.query(
    `INSERT INTO sluice.jobs (queue, name, payload) SELECT 'big', 'big.job', jsonb_build_object('n', n, 's', repeat('x', $1))
     FROM generate_series(1, $2) n`,
    [PAYLOAD_CHARS, JOBS],
  );
  const rows = await jobClaim(db.pool, { queues: ['big'], limits: [JOBS], workerId: 'large-batch', leaseMs: 60_000 });
  expect(rows).toHaveLength(JOBS);
  expect(rows.map((r) => (r.payload as { n: number }).n)).toEqual(Array.from({ length: JOBS }, (_, i) => i + 1));
  expect(rows.every((r) => (r.payload as { s: string }).s.length === PAYLOAD_CHARS)).toBe(true);
}, 120_000);
