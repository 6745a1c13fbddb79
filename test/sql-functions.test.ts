// drizzle/functions is the one home of every SQL function and view: each file
// defines exactly one of them as the migrated database has it, and migrate()
// re-applies a file when it changes (or its object went missing), and only then.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError, migrate } from '../packages/sluice/src/index.js';
import { MIGRATIONS_FOLDER_DEFAULT } from '../packages/sluice/src/migrate.js';
import { applyUntilFixpoint, readFunctionFiles } from '../packages/sluice/src/migrate-functions.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { routinesAndViews } from './helpers/schema.js';

const files = readFunctionFiles(`${MIGRATIONS_FOLDER_DEFAULT}/functions`);

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

describe('drizzle/functions', () => {
  it('holds one file per function and view of the migrated database, each with its live definition', async () => {
    const client = await db.pool.connect();
    try {
      const live = await routinesAndViews(client);
      expect(Object.keys(live).length).toBeGreaterThan(40);
      await client.query('BEGIN');
      // Drop every function and view, then let the files alone build them again.
      await client.query(`DO $$ BEGIN
        EXECUTE (SELECT 'DROP VIEW ' || string_agg(c.oid::regclass::text, ', ') || ' CASCADE' FROM pg_class c
                 WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind = 'v');
        EXECUTE (SELECT 'DROP FUNCTION ' || string_agg(p.oid::regprocedure::text, ', ') || ' CASCADE' FROM pg_proc p
                 WHERE p.pronamespace = 'sluice'::regnamespace);
      END $$`);
      expect(await routinesAndViews(client)).toEqual({});

      const made: Record<string, string[]> = {};
      let previous = new Set<string>();
      await applyUntilFixpoint(client, files, async (file) => {
        const now = Object.keys(await routinesAndViews(client));
        made[file.name] = now.filter((k) => !previous.has(k));
        previous = new Set(now);
      });

      // Each file made exactly its one object, and no other file made it too.
      expect(Object.keys(made).sort()).toEqual(files.map((f) => f.name).sort());
      for (const f of files) {
        expect(made[f.name], f.name).toHaveLength(1);
        expect(made[f.name]![0], f.name).toMatch(new RegExp(`^${f.kind} sluice\\.${f.object}(\\(|$)`));
      }
      // Together they are exactly the live objects, definitions and privileges included.
      expect(await routinesAndViews(client)).toEqual(live);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('are each linked from docs/sql-reference.md', () => {
    const doc = readFileSync(new URL('../docs/sql-reference.md', import.meta.url), 'utf8');
    const linked = [...doc.matchAll(/\]\(\.\.\/drizzle\/functions\/([^)]+\.sql)\)/g)].map((m) => m[1]);
    expect(files.map((f) => f.name).filter((name) => !linked.includes(name))).toEqual([]);
  });
});

describe('migrate() and drizzle/functions', () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'sluice-functions-'));
    cpSync(MIGRATIONS_FOLDER_DEFAULT, folder, { recursive: true });
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  async function recorded(): Promise<Map<string, { hash: string; appliedAt: string }>> {
    const { rows } = await db.pool.query<{ name: string; hash: string; applied_at: string }>(
      `SELECT name, hash, applied_at::text FROM sluice.__functions`,
    );
    return new Map(rows.map((r) => [r.name, { hash: r.hash, appliedAt: r.applied_at }]));
  }

  function changedOnly(before: Map<string, { appliedAt: string }>, after: Map<string, { appliedAt: string }>): string[] {
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    return [...after].filter(([name, r]) => before.get(name)!.appliedAt !== r.appliedAt).map(([name]) => name);
  }

  it('records every file, and re-applies none while nothing changed', async () => {
    const before = await recorded();
    expect([...before.keys()].sort()).toEqual(files.map((f) => f.name).sort());
    await migrate(db.pool, { migrationsFolder: folder });
    expect(changedOnly(before, await recorded())).toEqual([]);
  });

  it('re-applies a changed file on the next migrate(), and only that one', async () => {
    const path = join(folder, 'functions/jobs/wait-ms.sql');
    writeFileSync(path, readFileSync(path, 'utf8').replace('$$', () => '$$\n  -- changed by the test\n'));
    const before = await recorded();
    await migrate(db.pool, { migrationsFolder: folder });
    const after = await recorded();
    expect(changedOnly(before, after)).toEqual(['jobs/wait-ms.sql']);
    expect(after.get('jobs/wait-ms.sql')!.hash).not.toBe(before.get('jobs/wait-ms.sql')!.hash);
    const { rows } = await db.pool.query<{ def: string }>(
      `SELECT pg_get_functiondef('sluice.wait_ms'::regproc) AS def`,
    );
    expect(rows[0]!.def).toContain('-- changed by the test');
  });

  it('re-creates an object a numbered migration dropped although its file did not change', async () => {
    await db.pool.query('DROP VIEW sluice.job_counts');
    const before = await recorded();
    await migrate(db.pool, { migrationsFolder: folder });
    expect(changedOnly(before, await recorded())).toEqual(['jobs/counts.sql']);
    const { rows } = await db.pool.query(`SELECT to_regclass('sluice.job_counts')::text AS v`);
    expect(rows[0]).toEqual({ v: 'sluice.job_counts' });
  });

  it('a file that cannot be applied fails migrate() with its name and applies none of the others', async () => {
    const good = join(folder, 'functions/jobs/depth.sql');
    writeFileSync(good, readFileSync(good, 'utf8').replace('$$', () => '$$\n  -- changed by the test\n'));
    const bad = join(folder, 'functions/queues/oldest-waiting-at.sql');
    writeFileSync(bad, readFileSync(bad, 'utf8').replace('FROM sluice.jobs', 'FROM sluice.no_such_table'));
    const before = await recorded();
    const err = await migrate(db.pool, { migrationsFolder: folder }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as Error).message).toContain('queues/oldest-waiting-at.sql');
    expect((err as Error).message).toContain('no_such_table');
    expect(changedOnly(before, await recorded())).toEqual([]);
    const { rows } = await db.pool.query<{ def: string }>(`SELECT pg_get_functiondef('sluice.job_depth'::regproc) AS def`);
    expect(rows[0]!.def).not.toContain('-- changed by the test');
  });
});

describe('sluice.enqueue input', () => {
  it.each(['infinity', '-infinity'])("refuses run_at => '%s' (a job that would never come due, or sort first forever) and writes nothing", async (runAt) => {
    const before = await db.pool.query(`SELECT count(*)::int AS n FROM sluice.jobs`);
    const err = await db.pool
      .query(`SELECT sluice.enqueue('sqlfn.any', '{}', run_at => $1::timestamptz)`, [runAt])
      .catch((e: unknown) => e as Error & { code?: string });
    expect(err).toMatchObject({ code: '22023', message: expect.stringContaining('run_at') });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM sluice.jobs`)).rows).toEqual(before.rows);
  });
});
