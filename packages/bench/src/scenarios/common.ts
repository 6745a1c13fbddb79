// Pieces the scenarios share: payloads, seeding, and waiting for a queue to
// drain as seen by the database rather than by the handlers.
import pg from 'pg';
import type { Payload, Producer } from '../systems/types.js';

export const BATCH = 1_000;

export function payloads(from: number, count: number): Payload[] {
  return Array.from({ length: count }, (_, k) => ({ i: from + k }));
}

/** Enqueues `count` jobs in bulk batches of 1,000 (untimed setup). */
export async function seed(producer: Producer, count: number, from = 0): Promise<void> {
  for (let done = 0; done < count; done += BATCH) {
    await producer.enqueueMany(payloads(from + done, Math.min(BATCH, count - done)));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A connection opened before timing starts, to ask how many jobs are left. */
export async function remainingCounter(
  url: string,
  sql: string,
): Promise<{ client: pg.Client; count(): Promise<number>; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    client,
    count: async () => (await client.query<{ n: number }>(sql)).rows[0]!.n,
    close: () => client.end(),
  };
}

/**
 * Resolves once the handlers have seen `target` jobs and the database holds
 * no unfinished job: an acknowledgement still in a client-side batch does not
 * count as done. Returns false when the deadline passed first.
 */
export async function waitDrained(
  seen: () => number,
  target: number,
  remaining: () => Promise<number>,
  deadline: () => number,
): Promise<boolean> {
  while (seen() < target) {
    if (performance.now() > deadline()) return false;
    await sleep(2);
  }
  while ((await remaining()) > 0) {
    if (performance.now() > deadline()) return false;
    await sleep(2);
  }
  return true;
}
