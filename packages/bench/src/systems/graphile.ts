// graphile-worker through run() and WorkerUtils, as its docs show.
import { Logger, makeWorkerUtils, run, runMigrations } from 'graphile-worker';
import { REMAINING_SQL } from './queries.js';
import type { Payload, SystemAdapter } from './types.js';
import { packageVersion } from './version.js';

const TASK = 'noop';

// Its default logger prints every job at info level, which would cost it
// throughput the other systems do not pay.
const logger = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`[graphile-worker] ${message}`);
});

export const graphileAdapter: SystemAdapter = {
  key: 'graphile',
  async version() {
    return packageVersion('graphile-worker', import.meta.url);
  },
  async install(url) {
    await runMigrations({ connectionString: url, logger });
  },
  async producer(url, options) {
    const utils = await makeWorkerUtils({
      connectionString: url,
      logger,
      maxPoolSize: (options.poolSize as number | undefined) ?? 4,
    });
    return {
      enqueueOne: async (p: Payload) => void (await utils.addJob(TASK, p)),
      enqueueMany: async (ps: Payload[]) => void (await utils.addJobs(ps.map((payload) => ({ identifier: TASK, payload })))),
      close: async () => {
        await utils.release();
      },
    };
  },
  async startWorker(url, options, onJob) {
    const { concurrency, maxPoolSize, pollInterval, ...worker } = options as {
      concurrency?: number;
      maxPoolSize?: number;
      pollInterval?: number;
    } & Record<string, unknown>;
    const runner = await run({
      connectionString: url,
      concurrency,
      maxPoolSize,
      pollInterval,
      noHandleSignals: true,
      logger,
      taskList: { [TASK]: async (payload) => onJob(payload as Payload) },
      preset: { worker },
    });
    return { stop: () => runner.stop() };
  },
  remainingSql: REMAINING_SQL.graphile,
};
