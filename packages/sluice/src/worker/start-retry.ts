// worker.start() during a database restart: the first statements are retried
// with a growing pause (each try logged) until they go through, stop() is
// called, or startTimeoutMs has passed. Only errors that say the database
// cannot be reached are retried; anything else (a missing schema, bad
// credentials) fails the start at once.
import type { Logger } from 'pino';
import { DatabaseUnavailableError, WorkerStateError } from '../errors.js';
import { monotonicMs } from '../clock.js';

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

/** Node socket errors and SQLSTATEs that mean "not reachable now", not "wrong". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '53300', // too_many_connections
]);

export function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // Class 08: connection exception (also what PgBouncer reports when its server is down).
  if (typeof code === 'string') return UNREACHABLE_CODES.has(code) || code.startsWith('08');
  return err instanceof Error && /Connection terminated|connection timeout/i.test(err.message);
}

export async function retryUntilReachable<T>(
  fn: () => Promise<T>,
  a: { timeoutMs: number; stopped: AbortSignal; logger: Logger },
): Promise<T> {
  const deadline = monotonicMs() + a.timeoutMs;
  let delayMs = RETRY_MIN_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      if (a.stopped.aborted) throw new WorkerStateError('worker was stopped before it could reach the database', { cause: err });
      const left = deadline - monotonicMs();
      if (left <= 0) throw new DatabaseUnavailableError(a.timeoutMs, { cause: err });
      const wait = Math.min(delayMs, left);
      a.logger.warn({ err, attempt, retryInMs: wait }, 'database not reachable at start; retrying');
      await sleep(wait, a.stopped);
      if (a.stopped.aborted) throw new WorkerStateError('worker was stopped before it could reach the database', { cause: err });
      delayMs = Math.min(delayMs * 2, RETRY_MAX_MS);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
