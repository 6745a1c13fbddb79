// An unmigrated or half-migrated database gives one named error from every
// entry point: the client, a worker, the CLI, the dashboard and the HTTP API
// all say "schema sluice is not installed ...: run `sluice migrate`" (issue 13,
// point 5). `sluice migrate` then names what it applied.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startDashboard } from '../packages/dashboard/src/index.js';
import { JobNotFoundError, SchemaNotMigratedError, Sluice, checkSchema, createWorker, defineJob, migrate } from '../packages/sluice/src/index.js';
import { createHttpApi } from '../packages/sluice/src/http/index.js';
import { migrationJournalRead } from '../packages/sluice/src/migration-files.js';
import { MIGRATIONS_FOLDER_DEFAULT } from '../packages/sluice/src/migrate.js';
import { readFunctionFiles } from '../packages/sluice/src/migrate-functions.js';
import { DashboardClient } from './fixtures/dashboard-http.js';
import { sluiceCli } from './helpers/cli.js';
import { count, createEmptyDb, createTestDb, type TestDb } from './helpers/db.js';

const NOT_INSTALLED = 'schema sluice is not installed: run `sluice migrate`';
const TOKEN = 'unmigrated-token-0123456789abcdef';
const JOURNAL = migrationJournalRead(MIGRATIONS_FOLDER_DEFAULT).entries;
const NEEDS = JOURNAL.length;
const FUNCTION_FILES = readFunctionFiles(`${MIGRATIONS_FOLDER_DEFAULT}/functions`).length;
const job = defineJob({ name: 'unmigrated.job', queue: 'unmigrated', schema: z.object({ n: z.number() }) });

let empty: TestDb;
let sluice: Sluice;
beforeAll(async () => {
  empty = await createEmptyDb();
  sluice = new Sluice({ pool: empty.pool, jobs: [job] });
});
afterAll(async () => {
  await sluice.close();
  await empty.drop();
});

async function caught(fn: () => Promise<unknown>): Promise<SchemaNotMigratedError> {
  const err = await fn().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SchemaNotMigratedError);
  expect((err as Error).name).toBe('SchemaNotMigratedError');
  return err as SchemaNotMigratedError;
}

/** What a check must not write: the migration bookkeeping and every function's definition. */
async function bookkeeping(pool: pg.Pool): Promise<unknown> {
  const { rows } = await pool.query(
    `SELECT (SELECT json_agg(m ORDER BY m.id) FROM sluice.__migrations m) AS migrations,
            (SELECT json_agg(f ORDER BY f.name) FROM sluice.__functions f) AS functions,
            (SELECT json_agg(md5(pg_get_functiondef(p.oid)) ORDER BY p.oid) FROM pg_proc p WHERE p.pronamespace = 'sluice'::regnamespace) AS definitions`,
  );
  return rows[0];
}

describe('an empty database', () => {
  it('client: every call is refused with SchemaNotMigratedError, and nothing is created', async () => {
    for (const call of [
      () => sluice.enqueue(job, { n: 1 }),
      () => sluice.enqueue('unmigrated.job', { n: 1 }),
      () => sluice.getJob(1),
      () => sluice.waitFor(1, { timeoutMs: 1_000 }),
      () => sluice.replayDead([1]),
      () => sluice.queues.pause('unmigrated'),
      () => sluice.schedules.list(),
    ]) {
      const err = await caught(call);
      expect(err.message).toBe(NOT_INSTALLED);
      expect(err).toMatchObject({ databaseVersion: null, requiredVersion: NEEDS });
    }
    expect(await count(empty.pool, `SELECT count(*) n FROM pg_namespace WHERE nspname = 'sluice'`)).toBe(0);
  });

  it('worker: start() is refused with SchemaNotMigratedError', async () => {
    const worker = createWorker({ connectionString: empty.url, handlers: [job.handle(() => {})] });
    expect((await caught(() => worker.start())).message).toBe(NOT_INSTALLED);
  });

  it.each([
    [['stats']],
    [['jobs', 'list']],
    [['dlq', 'list']],
    [['queues', 'list']],
    [['cron', 'list']],
    [['metrics']],
    [['doctor']],
    [['prune']],
    [['dashboard', '--port', '0', '--token', TOKEN]],
    [['worker', 'test/fixtures/supervised-handlers.ts', '--processes', '2']],
  ])('CLI: sluice %j exits 4 with the message', async (args) => {
    const r = await sluiceCli(args, { DATABASE_URL: empty.url });
    expect(r.stderr).toContain(`SchemaNotMigratedError: ${NOT_INSTALLED}`);
    expect(r.code).toBe(4);
  });

  it('dashboard: every page, the sign-in too, is a 503 carrying the message', async () => {
    const server = await startDashboard({ sluice, auth: { token: TOKEN }, port: 0 });
    try {
      const client = new DashboardClient(server.url);
      const signIn = await client.signIn({ token: TOKEN });
      expect(signIn.status).toBe(503);
      expect(await signIn.text()).toContain(NOT_INSTALLED);
      for (const path of ['/login', '/', '/jobs', '/dead']) {
        const res = await client.get(path);
        expect(res.status).toBe(503);
        expect(await res.text()).toContain(NOT_INSTALLED);
      }
    } finally {
      await server.close();
    }
  });

  it('HTTP API: every route answers 503 schema_not_migrated with the message', async () => {
    const api = createHttpApi({ sluice, token: TOKEN, jobs: [job] });
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    for (const [method, path, body] of [
      ['GET', '/queues', undefined],
      ['GET', '/jobs/1', undefined],
      ['POST', '/jobs/unmigrated.job', JSON.stringify({ payload: { n: 1 } })],
    ] as const) {
      const res = await api.request(path, { method, headers, ...(body ? { body } : {}) });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: { code: 'schema_not_migrated', message: NOT_INSTALLED } });
    }
  });

  it('the API still asks for its token first', async () => {
    const api = createHttpApi({ sluice, token: TOKEN, jobs: [job] });
    expect((await api.request('/queues')).status).toBe(401);
  });
});

describe('a half-migrated database', () => {
  it('says which version it is at and which this sluice needs, from the client and the CLI', async () => {
    const db = await createTestDb();
    try {
      // The numbered migrations are in but the function files never ran.
      await db.pool.query('DROP TABLE sluice.__functions');
      expect((await caught(() => new Sluice({ pool: db.pool }).getJob(1))).message).toBe(
        `schema sluice is at version ${NEEDS} but its SQL functions are missing: run \`sluice migrate\``,
      );

      await db.pool.query('DELETE FROM sluice.__migrations WHERE created_at = (SELECT max(created_at) FROM sluice.__migrations)');
      const expected = `schema sluice is at version ${NEEDS - 1}, this sluice needs ${NEEDS} (missing ${JOURNAL.at(-1)!.tag}): run \`sluice migrate\``;
      expect((await caught(() => new Sluice({ pool: db.pool }).enqueue(job, { n: 1 }))).message).toBe(expected);
      const r = await sluiceCli(['stats'], { DATABASE_URL: db.url });
      expect(r.code).toBe(4);
      expect(r.stderr).toContain(expected);
    } finally {
      await db.drop();
    }
  });
});

describe('a database with part of its migrations applied', () => {
  it('a numbered migration missing from the middle of the history is refused by name, nothing written; sluice migrate applies it', async () => {
    const db = await createTestDb();
    try {
      // As if 0011 never ran (a release whose migration sorts before one
      // already applied): its index is still there and its row is not.
      const missed = JOURNAL.find((e) => e.tag === '0011_drop_running_index')!;
      await db.pool.query(`CREATE INDEX "jobs_running_idx" ON "sluice"."jobs" USING btree ("locked_by") WHERE state = 'running'`);
      await db.pool.query('DELETE FROM sluice.__migrations WHERE created_at = $1', [missed.when]);
      const before = await bookkeeping(db.pool);

      const expected = `schema sluice is at version ${NEEDS - 1}, this sluice needs ${NEEDS} (missing 0011_drop_running_index): run \`sluice migrate\``;
      expect((await caught(() => new Sluice({ pool: db.pool }).getJob(1))).message).toBe(expected);
      expect(await caught(() => checkSchema(db.pool))).toMatchObject({ databaseVersion: NEEDS - 1, requiredVersion: NEEDS });
      const r = await sluiceCli(['stats'], { DATABASE_URL: db.url });
      expect(r.code).toBe(4);
      expect(r.stderr).toContain(expected);
      expect(await bookkeeping(db.pool)).toEqual(before);

      expect(await migrate(db.pool)).toEqual({ applied: ['0011_drop_running_index'], functions: [] });
      expect(await count(db.pool, `SELECT count(*) n FROM pg_class WHERE relname = 'jobs_running_idx'`)).toBe(0);
      await expect(checkSchema(db.pool)).resolves.toBeUndefined();
    } finally {
      await db.drop();
    }
  });

  it('SQL function files whose object is gone are refused by name, nothing written; sluice migrate applies them', async () => {
    const db = await createTestDb();
    try {
      // Left by a sluice that predates a file, and by a numbered migration
      // that dropped a function whose file then failed to apply.
      await db.pool.query(`DELETE FROM sluice.__functions WHERE name = 'workers/alive.sql'`);
      // (CASCADE: queue_stats reads this view, so it goes too.)
      await db.pool.query('DROP VIEW sluice.workers_alive CASCADE');
      await db.pool.query('DROP FUNCTION sluice.queue_latency(integer, interval)');
      const before = await bookkeeping(db.pool);

      const expected =
        `schema sluice is at version ${NEEDS} but 3 of the ${FUNCTION_FILES} SQL function files this sluice ships are not applied ` +
        '(queues/latency.sql, queues/stats.sql, workers/alive.sql): run `sluice migrate`';
      expect((await caught(() => new Sluice({ pool: db.pool }).enqueue(job, { n: 1 }))).message).toBe(expected);
      const worker = createWorker({ connectionString: db.url, handlers: [job.handle(() => {})] });
      expect((await caught(() => worker.start())).message).toBe(expected);
      expect((await caught(() => checkSchema(db.pool))).message).toBe(expected);
      expect(await bookkeeping(db.pool)).toEqual(before);

      expect(await migrate(db.pool)).toEqual({ applied: [], functions: ['queues/latency.sql', 'queues/stats.sql', 'workers/alive.sql'] });
      await expect(checkSchema(db.pool)).resolves.toBeUndefined();
    } finally {
      await db.drop();
    }
  });

  it('function files applied with other definitions or under other names (a newer release during a rolling deploy) are accepted at run time; migrate re-applies them', async () => {
    const db = await createTestDb();
    try {
      await db.pool.query(`UPDATE sluice.__functions SET hash = 'another-definition' WHERE name = 'queues/stats.sql'`);
      await db.pool.query(`UPDATE sluice.__functions SET name = 'workers/alive-renamed.sql' WHERE name = 'workers/alive.sql'`);
      await expect(new Sluice({ pool: db.pool }).getJob(1)).rejects.toBeInstanceOf(JobNotFoundError);
      expect(await migrate(db.pool)).toEqual({ applied: [], functions: ['queues/stats.sql', 'workers/alive.sql'] });
    } finally {
      await db.drop();
    }
  });

  it('a database a newer sluice migrated (its function files differ too) is still accepted at run time', async () => {
    const db = await createTestDb();
    try {
      await db.pool.query(`INSERT INTO sluice.__migrations (hash, created_at) VALUES ('from-a-newer-sluice', $1)`, [JOURNAL.at(-1)!.when + 86_400_000]);
      await db.pool.query(`UPDATE sluice.__functions SET hash = 'a-newer-definition' WHERE name = 'jobs/claim.sql'`);
      await expect(new Sluice({ pool: db.pool }).getJob(1)).rejects.toBeInstanceOf(JobNotFoundError);
    } finally {
      await db.drop();
    }
  });
});

describe('sluice migrate', () => {
  it('prints each migration it applied on a fresh database, and "up to date" only when it applied none', async () => {
    const fresh = await createEmptyDb();
    try {
      const first = await sluiceCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(first.code).toBe(0);
      const applied = first.stdout.trim().split('\n');
      expect(applied.filter((l) => /^applied \d{4}_/.test(l))).toEqual(JOURNAL.map((e) => `applied ${e.tag}`));
      expect(applied).toContain('applied functions/jobs/claim.sql');
      expect(first.stdout).not.toContain('up to date');

      const second = await sluiceCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(second).toMatchObject({ code: 0, stdout: 'sluice schema is up to date (nothing to apply)\n' });
      const json = await sluiceCli(['migrate', '--json'], { DATABASE_URL: fresh.url });
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual({ applied: [], functions: [] });

      // And the entry points that refused before now work.
      const client = new Sluice({ pool: fresh.pool });
      expect(await client.enqueue(job, { n: 1 })).toBeGreaterThan(0);
    } finally {
      await fresh.drop();
    }
  });
});
