// A worker gives up a LISTEN session whose beat gets no answer, and keeps it
// open until a beat lands through its pool. If the stuck beat's request was
// only delayed (not lost), it still reaches the server after that: it recorded
// the session, about to close, as the worker's, and the rescuer took that
// session's end for the process's death and rescued the job it was running.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { CuttableProxy } from './helpers/cuttable-proxy.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';

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

it('a LISTEN session beat that reaches the server after its give-up does not get a live worker\'s running job rescued: the session\'s server process is ended after the pool\'s beat, and its late record undone', async () => {
  const job = defineJob({ name: 'stale.job', queue: 'stale-q', schema: z.object({}) });
  const other = defineJob({ name: 'stale.other', queue: 'stale-other', schema: z.object({}) });
  const leader = createWorker({ connectionString: db.url, handlers: [other.handle(async () => {})], runScheduler: false, pollIntervalMs: 100, heartbeatIntervalMs: 200, workerDeadAfterMs: 1_000 });
  workers.push(leader);
  await leader.start();
  await waitUntil(() => leader.isLeader, { what: 'leader' });
  const proxy = new CuttableProxy(new URL(db.url));
  await proxy.start();
  let runs = 0;
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  // Follower beats every 4 s on its session; a stuck one is given up after 6 s; lease 16 s.
  const w = createWorker({
    connectionString: db.url,
    listenConnectionString: proxy.url(),
    runScheduler: false,
    heartbeatIntervalMs: 4_000,
    workerDeadAfterMs: 16_000,
    pollIntervalMs: 60_000,
    concurrency: 1,
    handlers: [job.handle(async () => { runs += 1; await held; })],
  });
  workers.push(w);
  try {
    await w.start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(() => runs === 1, { what: 'the job running' });
    // The session's requests now reach the server 6.5 s late: the beat is given up at 6 s, the pool beat lands
    // and the held session is closed; the late beat then lands and records the closing session as this worker's.
    proxy.slowClients(6_500, { deliverAfterClose: true });
    const until = performance.now() + 16_000;
    let rescued = false;
    while (performance.now() < until) {
      const j = await sluice.getJob(id);
      if (j.errors.length > 0 || j.state !== 'running') {
        rescued = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(rescued).toBe(false);
  } finally {
    release();
    await proxy.close();
    await Promise.all(workers.splice(0).map((x) => x.stop()));
  }
}, 90_000);
