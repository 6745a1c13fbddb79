// A database migrated by the previous release (sluice 0.1.0, whose migrations
// still created every function) upgrades to exactly the state of a database
// migrated fresh by this one.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sluice, checkSchema, defineJob, migrate } from '../packages/sluice/src/index.js';
import { z } from 'zod';
import { createEmptyDb, createTestDb, type TestDb } from './helpers/db.js';
import { schemaShape } from './helpers/schema.js';

const FIXTURE = new URL('./fixtures/schema-v0.1.0.sql', import.meta.url);

let fresh: TestDb;
let upgraded: TestDb;

beforeAll(async () => {
  fresh = await createTestDb();
  upgraded = await createEmptyDb();
  // The dump sets session settings (search_path ''): give it a client of its own.
  const client = new pg.Client({ connectionString: upgraded.url });
  await client.connect();
  try {
    await client.query(readFileSync(FIXTURE, 'utf8'));
  } finally {
    await client.end();
  }
});

afterAll(async () => {
  await fresh?.drop();
  await upgraded?.drop();
});

const probe = defineJob({ name: 'upgrade.probe', queue: 'upgrade', schema: z.object({ n: z.number() }) });

describe('migrate() on a database of the previous release', () => {
  it('starts from a 0.1.0 database: its 14 migrations recorded, its functions made by them', async () => {
    const { rows } = await upgraded.pool.query<{ migrations: number; files: string | null; routines: number }>(
      `SELECT (SELECT count(*)::int FROM sluice.__migrations) AS migrations,
              to_regclass('sluice.__functions')::text AS files,
              (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'sluice'::regnamespace) AS routines`,
    );
    expect(rows[0]).toEqual({ migrations: 14, files: null, routines: 43 });
  });

  it('brings functions, views, tables, indexes, constraints and triggers to the fresh state', async () => {
    await migrate(upgraded.pool);
    expect(await schemaShape(upgraded.pool)).toEqual(await schemaShape(fresh.pool));
    await expect(checkSchema(upgraded.pool)).resolves.toBeUndefined();

    const sluice = new Sluice({ pool: upgraded.pool });
    const id = await sluice.enqueue(probe, { n: 1 });
    expect((await sluice.getJob(id)).state).toBe('available');
  });
});
