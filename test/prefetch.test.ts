// The default prefetch follows the jobs' pace: a worker of fast jobs claims
// well ahead of its slots (fewer statements a job), one of slow jobs claims no
// more than before (concurrency ahead), and a prefetch given is kept as given.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { PREFETCH_AUTO_MAX, PREFETCH_PER_SLOT_MAX, Prefetch } from '../packages/sluice/src/worker/prefetch.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';

let db: TestDb;
let sluice: Sluice;
const workers: Worker[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});
afterAll(async () => {
  await db.drop();
});

const held = (w: Worker) => count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE locked_by = $1`, [w.id]);

describe('prefetch', () => {
  it('adaptive: concurrency until a job has run, then a window of work, bounded per slot and in all', () => {
    const p = new Prefetch(null, 4);
    expect(p.size).toBe(4);
    for (let i = 0; i < 200; i++) p.observe(0.01);
    expect(p.size).toBe(4 * PREFETCH_PER_SLOT_MAX);
    for (let i = 0; i < 400; i++) p.observe(1_000);
    expect(p.size).toBe(4);
    // 4 slots busy for 100 ms at 20 ms a job: 20 ahead.
    for (let i = 0; i < 400; i++) p.observe(20);
    expect(p.size).toBeGreaterThanOrEqual(19);
    expect(p.size).toBeLessThanOrEqual(21);
    const wide = new Prefetch(null, 500);
    for (let i = 0; i < 200; i++) wide.observe(0.01);
    expect(wide.size).toBe(PREFETCH_AUTO_MAX);
    const given = new Prefetch(3, 4);
    for (let i = 0; i < 200; i++) given.observe(0.01);
    expect(given.size).toBe(3);
  });

  it('a worker of fast jobs holds more than concurrency ahead once it has measured them; a given prefetch is kept', async () => {
    const fast = defineJob({ name: 'pf.fast', queue: 'pf1', schema: z.object({ block: z.boolean() }) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = createWorker({ connectionString: db.url, pollIntervalMs: 100, concurrency: 2, handlers: [fast.handle(async (p) => (p.block ? gate : undefined))] });
    workers.push(w);
    await w.start();
    await sluice.enqueueMany(fast, Array.from({ length: 300 }, () => ({ block: false })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf1'`)) === 0, { what: 'fast jobs done' });
    // Both slots now wait on the gate; what else the worker holds is its prefetch.
    await sluice.enqueueMany(fast, Array.from({ length: 100 }, () => ({ block: true })));
    try {
      await waitUntil(async () => (await held(w)) > 2 + 2, { what: 'more than concurrency claimed ahead', timeoutMs: 10_000 });
      expect(await held(w)).toBeLessThanOrEqual(2 + 2 * PREFETCH_PER_SLOT_MAX);
    } finally {
      release();
    }

    let release2!: () => void;
    const gate2 = new Promise<void>((r) => (release2 = r));
    const fixed = createWorker({ connectionString: db.url, pollIntervalMs: 100, concurrency: 2, prefetch: 1, handlers: [fast.handle(async (p) => (p.block ? gate2 : undefined))] });
    workers.push(fixed);
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf1'`)) === 0, { what: 'blocked jobs done' });
    await w.stop();
    await fixed.start();
    await sluice.enqueueMany(fast, Array.from({ length: 300 }, () => ({ block: false })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf1'`)) === 0, { what: 'fast jobs done (fixed)' });
    await sluice.enqueueMany(fast, Array.from({ length: 20 }, () => ({ block: true })));
    try {
      await waitUntil(async () => (await held(fixed)) === 3, { what: 'slots and the given prefetch held' });
      await new Promise((r) => setTimeout(r, 300));
      expect(await held(fixed)).toBe(3);
    } finally {
      release2();
    }
  });

  it('a worker of slow jobs claims no more than concurrency ahead', async () => {
    const slow = defineJob({ name: 'pf.slow', queue: 'pf2', schema: z.object({}) });
    const w = createWorker({
      connectionString: db.url,
      pollIntervalMs: 100,
      concurrency: 2,
      handlers: [slow.handle(() => new Promise((r) => setTimeout(r, 150)))],
    });
    workers.push(w);
    await w.start();
    await sluice.enqueueMany(slow, Array.from({ length: 20 }, () => ({})));
    let most = 0;
    while ((await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pf2'`)) > 0) {
      most = Math.max(most, await held(w));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(most).toBeGreaterThan(0);
    // Running, claimed ahead, and finished jobs whose answers are still being written.
    expect(most).toBeLessThanOrEqual(2 + 2 + 2);
  });
});
