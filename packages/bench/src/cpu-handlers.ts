// Handlers module for `sluice worker` in the CPU-bound scenario: each job
// hashes in a loop for ~5 ms of wall time, as a CPU-heavy handler would.
import { createHash } from 'node:crypto';
import { defineJob } from 'sluice';
import { z } from 'zod';

export const CPU_JOB_MS = 5;
const block = Buffer.alloc(4096, 7);

export const CPU_JOB = defineJob({ name: 'bench.cpu', schema: z.object({ i: z.number() }) });

export function burn(ms: number): string {
  const end = performance.now() + ms;
  let digest = '';
  while (performance.now() < end) digest = createHash('sha256').update(block).update(digest).digest('hex');
  return digest;
}

export const handlers = [CPU_JOB.handle(() => void burn(CPU_JOB_MS))];
