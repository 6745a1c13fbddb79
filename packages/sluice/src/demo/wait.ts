// Waiting with a deadline, so a stuck demo says what it was waiting for
// instead of hanging.
import type { JobState, Sluice } from '../index.js';
import { monotonicMs } from '../clock.js';

const POLL_MS = 20;

export async function waitUntil<T>(
  check: () => Promise<T> | T,
  what: string,
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  const deadline = monotonicMs() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (monotonicMs() > deadline) throw new Error(`demo timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export function waitForState(sluice: Sluice, id: number, state: JobState, timeoutMs?: number) {
  return waitUntil(
    async () => {
      const job = await sluice.getJob(id);
      return job.state === state ? job : null;
    },
    `job ${id} to be ${state}`,
    timeoutMs,
  );
}
