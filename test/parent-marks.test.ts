// The parent marks (enqueue-many.sql): an enqueue with depends_on holds a
// shared advisory lock per parent bucket until it commits, and dead_purge /
// prune_history leave marked rows for a later round. Only marks of this
// database count: another database on the server may hold the same key.
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

it("dead_purge is not held back by another database's advisory locks", async () => {
  const { rows: enqueued } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('marks.purge', '{}'::jsonb, 'marks') AS id`);
  const id = Number(enqueued[0]!.id);
  await db.pool.query(`SELECT sluice.move_to_dead(ARRAY[$1::bigint], ARRAY['{}'::jsonb], ARRAY['exhausted'])`, [id]);
  const { rows } = await db.pool.query<{ k: number }>(`SELECT (hashint8($1::bigint) & 63)::int AS k`, [id]);
  // Another database on the same server holds the same key (a flow enqueue of another app, or any code).
  const other = new pg.Client({ connectionString: inject('adminUrl') });
  await other.connect();
  try {
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock_shared(1936486756, $1)', [rows[0]!.k]);
    const { rows: purged } = await db.pool.query<{ n: string }>(`SELECT sluice.dead_purge(ids => ARRAY[$1::bigint]) AS n`, [id]);
    expect(Number(purged[0]!.n)).toBe(1);
  } finally {
    await other.query('ROLLBACK');
    await other.end();
  }
});

// A child enqueued while its one live parent dies. The enqueue decides, from
// the parents, whether one failed (refused, SLD01) and whether one is live
// (the child waits). Decided in two statements, a parent that died between
// them was in neither answer and the child went in available: it ran
// although its parent had died. Many completed parents make those
// statements long enough that a death fired at a random moment of the
// enqueue falls between them in most rounds.
it('a child enqueued while its live parent dies never goes in available', async () => {
  const COMPLETED_PARENTS = 20_000;
  const ROUNDS = 30;
  const { rows: done } = await db.pool.query<{ id: string }>(
    `INSERT INTO sluice.job_history (id, queue, name, payload, priority, attempt, max_attempts, state, created_at, run_at)
     SELECT nextval('sluice.jobs_id_seq'), 'marks-race', 'marks.done', '{}', 0, 1, 1, 'completed', now(), now()
     FROM generate_series(1, $1) RETURNING id`,
    [COMPLETED_PARENTS],
  );
  const completed = done.map((r) => r.id);
  const enqueueChild = (client: pg.ClientBase, parent: string) =>
    client.query<{ id: string }>(`SELECT sluice.enqueue('marks.child', '{}'::jsonb, 'marks-race', depends_on => $1::bigint[]) AS id`, [
      [parent, ...completed],
    ]);
  const producer = new pg.Client({ connectionString: db.url });
  await producer.connect();
  try {
    // How long such an enqueue takes here, its parent staying live.
    const { rows: p0 } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('marks.parent', '{}'::jsonb, 'marks-race') AS id`);
    const started = performance.now();
    await enqueueChild(producer, p0[0]!.id);
    const enqueueMs = performance.now() - started;
    const states: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { rows: p } = await db.pool.query<{ id: string }>(`SELECT sluice.enqueue('marks.parent', '{}'::jsonb, 'marks-race') AS id`);
      const parent = p[0]!.id;
      const child = enqueueChild(producer, parent).then(
        (r) => r.rows[0]!.id,
        (err: { code?: string }) => {
          if (err.code !== 'SLD01') throw err;
          return null;
        },
      );
      await new Promise((r) => setTimeout(r, Math.random() * enqueueMs));
      await db.pool.query(`SELECT sluice.move_to_dead(ARRAY[$1::bigint], ARRAY['{}'::jsonb], ARRAY['exhausted'])`, [parent]);
      const id = await child;
      if (id === null) continue;
      const { rows } = await db.pool.query<{ state: string }>(
        `SELECT state FROM sluice.jobs WHERE id = $1 UNION ALL SELECT 'dead' FROM sluice.dead_jobs WHERE id = $1`,
        [id],
      );
      states.push(rows[0]!.state);
    }
    // Waiting (the orphan sweep sends it down) or already dead, never available.
    expect(states.filter((s) => s !== 'waiting' && s !== 'dead')).toEqual([]);
  } finally {
    await producer.end();
  }
}, 120_000);
