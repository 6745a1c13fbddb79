// Section 2: a few thousand jobs enqueued in one statement and worked off by
// one worker, with a live progress bar and the measured rate.
import type { JobEvent } from '../index.js';
import type { DemoContext } from './context.js';
import { resizeImage } from './jobs.js';
import { heading, note } from './output.js';
import { ProgressBar } from './progress.js';
import { waitUntil } from './wait.js';

const JOBS = 5_000;

export async function showThroughput({ sluice, worker }: DemoContext): Promise<number> {
  heading(`2. A worker processes ${JOBS.toLocaleString('en-US')} jobs`);
  const payloads = Array.from({ length: JOBS }, (_, i) => ({ imageId: i + 1, width: 640 }));

  let completed = 0;
  let lastCompletedAt = 0;
  const bar = new ProgressBar(JOBS);
  // Counted from the worker's acknowledgements, so a job counts once its
  // completion is committed, not when its handler returns.
  const onJob = (e: JobEvent) => {
    if (e.name !== resizeImage.name || e.result !== 'completed') return;
    completed++;
    lastCompletedAt = performance.now();
    bar.update(completed);
  };
  worker.on('job', onJob);

  let start: number;
  try {
    const enqueueStart = performance.now();
    await sluice.enqueueMany(resizeImage, payloads);
    // The jobs became claimable at commit, when enqueueMany returned.
    start = performance.now();
    bar.start();
    note(`sluice.enqueueMany(resizeImage, [${JOBS.toLocaleString('en-US')} payloads]): one statement, ${Math.round(start - enqueueStart)} ms`);
    note();
    await waitUntil(() => completed >= JOBS, `${JOBS} image.resize completions`, 45_000);
  } finally {
    worker.off('job', onJob);
  }
  bar.finish();
  const seconds = (lastCompletedAt - start) / 1000;
  const rate = Math.round(JOBS / seconds);
  note();
  note(`${JOBS.toLocaleString('en-US')} jobs completed in ${seconds.toFixed(2)} s: ${rate.toLocaleString('en-US')} jobs/s`);
  note(`(one worker process, concurrency ${worker.concurrency}; each completion moves the row to sluice.job_history)`);
  return rate;
}
