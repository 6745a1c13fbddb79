// Claims, and enqueues into bounded queues, count after waiting for a queue's
// row lock; under REPEATABLE READ that count would come from a snapshot older
// than the wait. They refuse any level but READ COMMITTED with
// IsolationLevelError (SLI01 from SQL), and a worker checks at start.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { IsolationLevelError, Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';
import { lockWaitOrSettled } from './helpers/sessions.js';

let db: TestDb;
let sluice: Sluice;

const bounded = defineJob({ name: 'iso.bounded', queue: 'iso.bounded', schema: z.object({ n: z.number() }) });
const open = defineJob({ name: 'iso.open', queue: 'iso.open', schema: z.object({ n: z.number() }) });

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await sluice.queues.configure('iso.bounded', { maxDepth: 1, overflow: 'reject', paused: true });
});

afterAll(async () => {
  await sluice?.close();
  await db?.drop();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  return c;
}

describe('isolation level', () => {
  it('a REPEATABLE READ enqueue into a bounded queue that waited for an earlier enqueue is refused, and the queue stays within its depth', async () => {
    const first = await client();
    const second = await client();
    try {
      await first.query('BEGIN');
      await sluice.enqueue(bounded, { n: 1 }, { tx: first });
      // A snapshot taken before the first enqueue commits, as any report or export would.
      await second.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await second.query('SELECT 1');
      const secondPid = (await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const late = sluice.enqueue(bounded, { n: 2 }, { tx: second }).catch((e: unknown) => e);
      // Without the check it waits for the first one's lock on the queue row.
      await lockWaitOrSettled(db.pool, secondPid, late);
      await first.query('COMMIT');
      const err = await late;
      await second.query('ROLLBACK');
      expect(err).toBeInstanceOf(IsolationLevelError);
      expect(err).toMatchObject({ level: 'repeatable read' });
      expect((err as Error).message).toContain('iso.bounded');
      expect((err as Error).message).not.toContain('"n"');
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'iso.bounded'`)).toBe(1);
    } finally {
      await first.end();
      await second.end();
      await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'iso.bounded'`);
    }
  });

  it('a REPEATABLE READ or SERIALIZABLE transaction still enqueues into a queue without a maxDepth', async () => {
    for (const level of ['REPEATABLE READ', 'SERIALIZABLE']) {
      const c = await client();
      try {
        await c.query(`BEGIN ISOLATION LEVEL ${level}`);
        const id = await sluice.enqueue(open, { n: 1 }, { tx: c });
        await c.query('COMMIT');
        expect((await sluice.getJob(id)).state).toBe('available');
      } finally {
        await c.end();
      }
    }
  });

  it('a claim from SQL under REPEATABLE READ raises SLI01 and claims nothing', async () => {
    const id = await sluice.enqueue(open, { n: 2 });
    const c = await client();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await expect(c.query(`SELECT * FROM sluice.claim(ARRAY['iso.open'], ARRAY[10], 'by-hand', 60000)`)).rejects.toMatchObject({
        code: 'SLI01',
        message: expect.stringContaining('repeatable read'),
      });
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    expect((await sluice.getJob(id)).state).toBe('available');
  });

  it('a worker on a database whose sessions default to REPEATABLE READ fails to start with IsolationLevelError, claiming nothing', async () => {
    const other = await createTestDb();
    try {
      await other.pool.query(`ALTER DATABASE ${other.name} SET default_transaction_isolation = 'repeatable read'`);
      const producer = new Sluice({ connectionString: other.url });
      const id = await producer.enqueue(open, { n: 3 });
      const runs: number[] = [];
      const worker = createWorker({ connectionString: other.url, handlers: [open.handle((p) => void runs.push(p.n))] });
      const err = await worker.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IsolationLevelError);
      expect(err).toMatchObject({ level: 'repeatable read' });
      expect((err as Error).message).toContain("default_transaction_isolation");
      expect((await producer.getJob(id)).state).toBe('available');
      expect(runs).toEqual([]);
      await producer.close();
    } finally {
      await other.drop();
    }
  });
});
