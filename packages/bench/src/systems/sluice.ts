// sluice through its public API, as an application would use it.
import { createSluice, createWorker, defineJob, type QueueSettings } from 'sluice';
import { z } from 'zod';
import { REMAINING_SQL } from './queries.js';
import type { Payload, SystemAdapter } from './types.js';
import { packageVersion } from './version.js';

export const NOOP_JOB = defineJob({
  name: 'bench.noop',
  schema: z.object({ i: z.number(), t: z.number().optional() }),
});

export const sluiceAdapter: SystemAdapter = {
  key: 'sluice',
  async version() {
    return packageVersion('sluice', import.meta.url);
  },
  async install(url) {
    const s = createSluice({ connectionString: url, poolSize: 2 });
    try {
      await s.migrate();
    } finally {
      await s.close();
    }
  },
  async producer(url, options) {
    const s = createSluice({ connectionString: url, poolSize: (options.poolSize as number | undefined) ?? 4 });
    return {
      enqueueOne: async (p: Payload) => void (await s.enqueue(NOOP_JOB, p)),
      enqueueMany: async (ps: Payload[]) => void (await s.enqueueMany(NOOP_JOB, ps)),
      close: () => s.close(),
    };
  },
  async startWorker(url, options, onJob) {
    const { queueSettings, ...workerOptions } = options as { queueSettings?: QueueSettings };
    if (queueSettings) {
      const s = createSluice({ connectionString: url, poolSize: 2 });
      try {
        await s.queues.configure('default', queueSettings);
      } finally {
        await s.close();
      }
    }
    const worker = createWorker({
      connectionString: url,
      handlers: [NOOP_JOB.handle((p) => onJob(p))],
      ...workerOptions,
    });
    await worker.start();
    return { stop: () => worker.stop() };
  },
  remainingSql: REMAINING_SQL.sluice,
};
