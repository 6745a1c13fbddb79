// A script that enqueued and awaited waitFor ends by itself: sluice holds no
// connection or timer once nothing waits (issue 13, point 4).
import { describe, expect, it } from 'vitest';
import { spawnFixture } from './helpers/child.js';
import { useSuite } from './helpers/suite.js';
import { doubleJob } from './fixtures/lifetime-job.js';

const suite = useSuite({ pollIntervalMs: 100, runScheduler: false });
/** Generous: the child needs a few milliseconds; a hang never ends. */
const EXIT_BOUND_MS = 10_000;

describe('process lifetime', () => {
  it('a script that awaited waitFor (a worker in another process ran the job) exits with code 0 by itself', async () => {
    await suite.startWorker({ handlers: [doubleJob.handle(({ n }) => ({ doubled: n * 2 }))] }).start();
    const child = spawnFixture('test/fixtures/wait-for-script.ts', [suite.db.url]);
    const [, id] = await child.waitForLine(/^enqueued (\d+)$/);
    await child.waitForLine(/^waited 42$/, 60_000);
    const code = await Promise.race([
      child.exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`the script did not exit within ${EXIT_BOUND_MS} ms of its last await`)), EXIT_BOUND_MS),
      ),
    ]).finally(() => child.process.kill());
    expect(code).toBe(0);
    expect((await suite.sluice.getJob(Number(id))).state).toBe('completed');
  });
});
