// The steps of worker.stop() that must end even with the database gone:
// handing claims back, writing the last acknowledgements, and waiting for
// running handlers, each bounded by shutdownTimeoutMs or left to the rescuer.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobReleaseMany } from '../sql/job-leases.js';
import type { Completer } from './completer.js';

type Claimed = { id: number; attempt: number; lease: number };

/** Hands jobs back to their queue, their attempt given back; throws what the write threw. */
export async function handBack(db: Queryable, workerId: string, jobs: Claimed[]): Promise<void> {
  if (jobs.length === 0) return;
  await jobReleaseMany(db, { ids: jobs.map((j) => j.id), attempts: jobs.map((j) => j.attempt), leases: jobs.map((j) => j.lease), workerId });
}

/** Hands jobs back to their queue; on failure their leases lapse and the rescuer does it. */
export async function releaseClaims(db: Queryable, workerId: string, jobs: Claimed[], logger: Logger): Promise<void> {
  await handBack(db, workerId, jobs).catch((err) => logger.warn({ err, jobs: jobs.length }, 'could not release jobs; their leases will lapse'));
}

export async function flushAcks(completer: Completer, timeoutMs: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const flushed = await Promise.race([
    completer.flush().then(() => true),
    new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (!flushed) {
    logger.warn({ acks: completer.pending }, 'acknowledgements not written before shutdown; those jobs will be rescued');
    completer.abandon();
  }
}

export async function waitForRunning(running: Iterable<{ done: Promise<void> }>, timeoutMs: number): Promise<void> {
  const done = [...running].map((j) => j.done);
  if (done.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(done), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
}
