// Reads that may trail the primary go to a read replica: a real streaming
// replica started for this file (test/helpers/replica.ts). Replay is paused
// on the replica to tell the two servers apart: what the primary has and the
// replica has not yet replayed shows which one a command read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { createDashboard } from '../packages/dashboard/src/index.js';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { replicaLag } from '../packages/sluice/src/admin.js';
import { sluiceCli } from './helpers/cli.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { startReplica, type Replica } from './helpers/replica.js';

const job = defineJob({ name: 'replica.job', queue: 'replica', schema: z.object({ n: z.number() }) });
const DATABASE = 'sluice_replica_test';

let replica: Replica | null = null;
let skipReason: string | null = null;
let db: TestDb | null = null;
let primaryUrl = '';
let replicaUrl = '';
let sluice: Sluice;
let replicaAdmin: pg.Client;

beforeAll(async () => {
  const started = await startReplica(inject('adminUrl'));
  if (typeof started === 'string') {
    skipReason = started;
    console.log(`read-replica tests skipped: ${started}`);
    return;
  }
  replica = started;
  if (replica.fromLocalServer) {
    db = await createTestDb();
    primaryUrl = db.url;
    replicaUrl = replica.replicaUrl(db.name);
  } else {
    const admin = new pg.Client({ connectionString: replica.primaryUrl('postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.end();
    primaryUrl = replica.primaryUrl(DATABASE);
    replicaUrl = replica.replicaUrl(DATABASE);
    const migrator = new Sluice({ connectionString: primaryUrl, logger: pino({ level: 'silent' }) });
    await migrator.migrate();
    await migrator.close();
  }
  // The database reaches the replica by streaming.
  replicaAdmin = await waitUntil(
    async () => {
      const c = new pg.Client({ connectionString: replicaUrl });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT 1 FROM sluice.jobs LIMIT 1');
        return c;
      } catch {
        await c.end().catch(() => {});
        return null;
      }
    },
    { timeoutMs: 60_000, intervalMs: 200, what: 'database on the replica' },
  );
  sluice = new Sluice({ connectionString: primaryUrl, readConnectionString: replicaUrl, logger: pino({ level: 'silent' }) });
}, 300_000);

afterAll(async () => {
  await sluice?.close();
  await replicaAdmin?.end().catch(() => {});
  await db?.drop();
  await replica?.stop();
}, 60_000);

const onReplica = (id: number) =>
  sluice.getJob(id, { tx: sluice.readPool }).then(
    () => true,
    () => false,
  );

describe('a read replica', () => {
  it('takes the reads (lists, stats, CLI, dashboard) while writes and claims go to the primary; its lag is shown', async (ctx) => {
    if (skipReason) ctx.skip();
    const { rows } = await sluice.readPool.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    expect(rows[0]!.r).toBe(true);
    expect(await replicaLag(sluice.pool)).toBeNull();

    // A write through the read pool would fail on the replica (read-only): this one lands.
    const first = await sluice.enqueue(job, { n: 1 });
    await waitUntil(() => onReplica(first), { what: 'first job replayed' });

    await replicaAdmin.query('SELECT pg_wal_replay_pause()');
    try {
      const second = await sluice.enqueue(job, { n: 2 });
      await waitUntil(async () => (await replicaLag(sluice.readPool))!.lagSeconds > 0, { what: 'replica behind' });
      expect(await onReplica(second)).toBe(false);
      expect(await sluice.getJob(second)).toMatchObject({ id: second, state: 'available' });
      const primaryStats = await sluice.queues.stats();
      expect(primaryStats.find((s) => s.queue === 'replica')).toBeDefined();

      const cli = (args: string[]) => sluiceCli([...args, '--database-url', primaryUrl, '--read-database-url', replicaUrl]);
      const list = await cli(['jobs', 'list', '--queue', 'replica', '--json']);
      expect(list.code, list.stderr).toBe(0);
      const listed = (JSON.parse(list.stdout) as { jobs: { id: string | number }[] }).jobs.map((r) => Number(r.id));
      expect(listed).toContain(first);
      expect(listed).not.toContain(second);
      const show = await cli(['jobs', 'show', String(second)]);
      expect(show.code).not.toBe(0);
      const stats = await cli(['stats']);
      expect(stats.code, stats.stderr).toBe(0);
      expect(stats.stdout).toMatch(/read from a replica, lag \d+\.\d s/);
      const statsJson = await cli(['stats', '--json']);
      expect(JSON.parse(statsJson.stdout).replica.lagSeconds).toBeGreaterThan(0);
      const metrics = await cli(['metrics']);
      expect(metrics.stdout).toContain('queue="replica"');

      const app = createDashboard({ sluice, auth: { authorize: () => true }, logger: pino({ level: 'silent' }) });
      const page = await (await app.fetch(new Request('http://dashboard.test/'))).text();
      expect(page).toContain('read replica lag');
      const jobPage = await app.fetch(new Request(`http://dashboard.test/jobs/${second}`));
      expect(jobPage.status).toBe(404);

      // A worker reading from the replica still claims on the primary: the job replay has not reached runs.
      const ran: number[] = [];
      const worker = createWorker({
        connectionString: primaryUrl,
        readConnectionString: replicaUrl,
        handlers: [job.handle((p) => void ran.push(p.n))],
        logger: pino({ level: 'silent' }),
      });
      await worker.start();
      try {
        await waitUntil(() => ran.length === 2, { what: 'both jobs ran' });
      } finally {
        await worker.stop();
      }
      expect(ran.sort()).toEqual([1, 2]);
    } finally {
      await replicaAdmin.query('SELECT pg_wal_replay_resume()');
    }
    await waitUntil(async () => (await replicaLag(sluice.readPool))!.lagSeconds === 0, { what: 'replica caught up' });
  }, 120_000);
});
