// migrate(): idempotent, safe from several processes at once, refuses a
// database migrated by a newer sluice; checkSchema() tells an unmigrated
// database apart from a current one.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MigrationError,
  SchemaNotMigratedError,
  SchemaTooNewError,
  Sluice,
  checkSchema,
  defineJob,
  migrate,
} from '../packages/sluice/src/index.js';
import { MIGRATIONS_FOLDER_DEFAULT } from '../packages/sluice/src/migrate.js';
import { z } from 'zod';
import { count, createEmptyDb, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MIGRATE_SCRIPT = fileURLToPath(new URL('./fixtures/migrate-process.ts', import.meta.url));

const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER_DEFAULT}/meta/_journal.json`, 'utf8')) as {
  entries: { when: number; tag: string }[];
};
const KNOWN_AT = Math.max(...journal.entries.map((e) => e.when));

const cleanups: (() => Promise<void>)[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

async function testDb(): Promise<TestDb> {
  const db = await createTestDb();
  cleanups.push(() => db.drop());
  return db;
}

async function emptyDb(): Promise<TestDb> {
  const db = await createEmptyDb();
  cleanups.push(() => db.drop());
  return db;
}

/**
 * Everything a migration could touch: each object in schema sluice with its
 * oid (a dropped and recreated object gets a new one), each function's
 * definition, the migrations table, and the rows of the live tables.
 */
async function fingerprint(pool: pg.Pool): Promise<unknown> {
  const relations = await pool.query(
    `SELECT c.relname, c.relkind, c.oid::int AS oid FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sluice' ORDER BY c.relname`,
  );
  const functions = await pool.query(
    `SELECT p.proname, p.oid::int AS oid, md5(pg_get_functiondef(p.oid)) AS def FROM pg_proc p
     JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'sluice' ORDER BY p.proname, p.oid`,
  );
  const migrations = await pool.query(`SELECT id, hash, created_at FROM sluice.__migrations ORDER BY id`);
  const jobs = await pool.query(`SELECT id, name, queue, payload, state FROM sluice.jobs ORDER BY id`);
  const queues = await pool.query(`SELECT * FROM sluice.queues ORDER BY name`);
  return { relations: relations.rows, functions: functions.rows, migrations: migrations.rows, jobs: jobs.rows, queues: queues.rows };
}

async function advisoryLocksHeld(pool: pg.Pool): Promise<number> {
  return count(pool, `SELECT count(*) n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
}

const probeJob = defineJob({ name: 'migrate.probe', queue: 'migrate-probe', schema: z.object({ n: z.number() }) });

describe('migrate', () => {
  it('on a migrated database is a no-op', async () => {
    const db = await testDb();
    const sluice = new Sluice({ pool: db.pool });
    const id = await sluice.enqueue(probeJob, { n: 1 });
    const before = await fingerprint(db.pool);
    expect((before as { migrations: unknown[] }).migrations).toHaveLength(journal.entries.length);

    expect(await migrate(db.pool)).toEqual({ applied: [], functions: [] });
    await sluice.migrate();
    await Promise.all([migrate(db.pool), migrate(db.pool)]);

    expect(await fingerprint(db.pool)).toEqual(before);
    expect((await sluice.getJob(id)).state).toBe('available');
    await expect(checkSchema(db.pool)).resolves.toBeUndefined();
    expect(await advisoryLocksHeld(db.pool)).toBe(0);
  });

  it('from several processes and pools at once on a fresh database: all succeed, applied once', async () => {
    const fresh = await emptyDb();
    const procs = [0, 1].map(() => {
      const proc = spawn(process.execPath, ['--import', 'tsx', MIGRATE_SCRIPT, fresh.url], {
        cwd: ROOT,
        env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.push(proc);
      const state = { output: '', exit: null as number | null };
      proc.stdout!.setEncoding('utf8').on('data', (s: string) => (state.output += s));
      proc.stderr!.setEncoding('utf8').on('data', (s: string) => (state.output += s));
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve((state.exit = code))));
      return { proc, state, exited };
    });
    await waitUntil(
      () => {
        const gone = procs.find((p) => p.state.exit !== null);
        if (gone) throw new Error(`migrate process exited early:\n${gone.state.output}`);
        return procs.every((p) => p.state.output.includes('READY'));
      },
      { timeoutMs: 30_000, what: 'migrate processes ready' },
    );

    // Two more pools in this process; everything is released at the same moment.
    const pools = [0, 1].map(() => new pg.Pool({ connectionString: fresh.url, max: 2 }));
    cleanups.push(async () => void (await Promise.all(pools.map((p) => p.end()))));
    await Promise.all(pools.map((p) => p.query('SELECT 1')));
    for (const p of procs) {
      p.proc.stdin!.write('go\n');
      p.proc.stdin!.end();
    }
    const local = await Promise.allSettled(pools.map((p) => migrate(p)));
    const codes = await Promise.all(procs.map((p) => p.exited));

    expect(local.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
    for (const p of procs) expect(p.state.output).toContain('MIGRATED');
    expect(codes).toEqual([0, 0]);

    // Each migration recorded once, in journal order.
    const { rows } = await fresh.pool.query<{ hash: string; created_at: string }>(
      'SELECT hash, created_at FROM sluice.__migrations ORDER BY id',
    );
    expect(rows.map((r) => Number(r.created_at))).toEqual(journal.entries.map((e) => e.when));
    expect(new Set(rows.map((r) => r.hash)).size).toBe(journal.entries.length);
    // Every function exists in exactly one version.
    const { rows: overloads } = await fresh.pool.query(
      `SELECT p.proname, count(*)::int AS n FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace
       WHERE s.nspname = 'sluice' GROUP BY p.proname HAVING count(*) > 1`,
    );
    expect(overloads).toEqual([]);
    expect(await count(fresh.pool, `SELECT count(*) n FROM pg_namespace WHERE nspname = 'sluice'`)).toBe(1);
    expect(await advisoryLocksHeld(fresh.pool)).toBe(0);

    // And the result is a working sluice database.
    await expect(checkSchema(fresh.pool)).resolves.toBeUndefined();
    const sluice = new Sluice({ pool: fresh.pool });
    const id = await sluice.enqueue(probeJob, { n: 2 });
    expect((await sluice.getJob(id)).state).toBe('available');
  });

  it('names what it applied, and keeps the history drizzle-orm\'s migrator keeps (either may migrate a database)', async () => {
    const ours = await emptyDb();
    const first = await migrate(ours.pool);
    expect(first.applied).toEqual(journal.entries.map((e) => e.tag));
    expect(first.functions.length).toBeGreaterThan(0);
    expect(await migrate(ours.pool)).toEqual({ applied: [], functions: [] });

    const theirs = await emptyDb();
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { migrate: drizzleMigrate } = await import('drizzle-orm/node-postgres/migrator');
    await drizzleMigrate(drizzle(theirs.pool), { migrationsFolder: MIGRATIONS_FOLDER_DEFAULT, migrationsSchema: 'sluice', migrationsTable: '__migrations' });

    const history = (pool: pg.Pool) => pool.query('SELECT hash, created_at FROM sluice.__migrations ORDER BY id').then((r) => r.rows);
    expect(await history(ours.pool)).toEqual(await history(theirs.pool));
    expect((await migrate(theirs.pool)).applied).toEqual([]);
    await expect(checkSchema(theirs.pool)).resolves.toBeUndefined();
  });

  it('refuses a database migrated by a newer sluice and changes nothing', async () => {
    const db = await testDb();
    const sluice = new Sluice({ pool: db.pool });
    await sluice.enqueue(probeJob, { n: 3 });
    const futureAt = KNOWN_AT + 86_400_000;
    await db.pool.query(`INSERT INTO sluice.__migrations (hash, created_at) VALUES ('from-a-newer-sluice', $1)`, [futureAt]);
    const before = await fingerprint(db.pool);

    for (const run of [() => migrate(db.pool), () => sluice.migrate(), () => checkSchema(db.pool)]) {
      let caught: unknown;
      try {
        await run();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SchemaTooNewError);
      expect((caught as Error).name).toBe('SchemaTooNewError');
      expect(caught).toMatchObject({ databaseMigrationAt: futureAt, knownMigrationAt: KNOWN_AT });
      expect((caught as Error).message).toContain(String(futureAt));
    }

    expect(await fingerprint(db.pool)).toEqual(before);
    expect(await advisoryLocksHeld(db.pool)).toBe(0);
  });
});

describe('checkSchema', () => {
  it('on an empty database throws SchemaNotMigratedError (a MigrationError) and creates nothing', async () => {
    const fresh = await emptyDb();
    let caught: unknown;
    try {
      await checkSchema(fresh.pool);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MigrationError);
    expect(caught).toBeInstanceOf(SchemaNotMigratedError);
    expect((caught as Error).message).toBe('schema sluice is not installed: run `sluice migrate`');
    expect(await count(fresh.pool, `SELECT count(*) n FROM pg_namespace WHERE nspname = 'sluice'`)).toBe(0);
  });

  it('on a database missing the newest migration throws SchemaNotMigratedError with both versions', async () => {
    const db = await testDb();
    await db.pool.query('DELETE FROM sluice.__migrations WHERE created_at = (SELECT max(created_at) FROM sluice.__migrations)');
    let caught: unknown;
    try {
      await checkSchema(db.pool);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SchemaNotMigratedError);
    expect((caught as Error).name).toBe('SchemaNotMigratedError');
    expect(caught).toMatchObject({ databaseVersion: journal.entries.length - 1, requiredVersion: journal.entries.length });
  });

  it('on a migrated database passes', async () => {
    const db = await testDb();
    await expect(checkSchema(db.pool)).resolves.toBeUndefined();
  });
});
