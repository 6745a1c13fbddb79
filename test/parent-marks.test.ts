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
