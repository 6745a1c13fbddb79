import { z } from 'zod';
import { defineJob } from '../../packages/sluice/src/index.js';

export const sendEmail = defineJob({
  name: 'email.send',
  queue: 'emails',
  schema: z.object({ to: z.string().email(), subject: z.string().max(200).default('hello') }),
  maxAttempts: 3,
  backoff: { kind: 'fixed', baseMs: 50, jitter: 0 },
});

export const noop = defineJob({ name: 'noop', queue: 'bulk', schema: z.object({ n: z.number().int() }) });
