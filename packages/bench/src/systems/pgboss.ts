// pg-boss through send() / insert() / work(), as its docs show.
import { PgBoss } from 'pg-boss';
import { REMAINING_SQL } from './queries.js';
import type { Payload, SystemAdapter } from './types.js';
import { packageVersion } from './version.js';

const QUEUE = 'bench-noop';
// A second queue with NOTIFY on insert, for configurations that listen:
// pg-boss only wakes workers on queues created with `notify: true`.
const QUEUE_NOTIFY = 'bench-noop-notify';

function queueFor(options: Record<string, unknown>): string {
  return options.useListenNotify ? QUEUE_NOTIFY : QUEUE;
}

function open(options: ConstructorParameters<typeof PgBoss>[0] & object): PgBoss {
  const boss = new PgBoss(options);
  boss.on('error', (err: Error) => console.error(`[pg-boss] ${err.message}`));
  return boss;
}

export const pgbossAdapter: SystemAdapter = {
  key: 'pgboss',
  async version() {
    return packageVersion('pg-boss', import.meta.url);
  },
  async install(url) {
    const boss = open({ connectionString: url, supervise: false, schedule: false });
    await boss.start();
    await boss.createQueue(QUEUE);
    await boss.createQueue(QUEUE_NOTIFY, { notify: true });
    await boss.stop({ graceful: false, close: true });
  },
  async producer(url, options) {
    // A producer-only instance, like an API process that sends jobs.
    const boss = open({ connectionString: url, supervise: false, schedule: false, max: (options.poolSize as number | undefined) ?? 4 });
    await boss.start();
    const queue = queueFor(options);
    return {
      enqueueOne: async (p: Payload) => void (await boss.send(queue, p)),
      enqueueMany: async (ps: Payload[]) => void (await boss.insert(queue, ps.map((data) => ({ data })))),
      close: () => boss.stop({ graceful: false, close: true }),
    };
  },
  async startWorker(url, options, onJob) {
    const { useListenNotify, max, ...work } = options as { useListenNotify?: boolean; max?: number } & Record<string, unknown>;
    const boss = open({ connectionString: url, useListenNotify: useListenNotify ?? false, ...(max ? { max } : {}) });
    await boss.start();
    await boss.work<Payload>(queueFor(options), work, async (jobs) => {
      const held = jobs.map((job) => onJob(job.data)).filter((r): r is Promise<void> => r !== undefined);
      if (held.length) await Promise.all(held);
    });
    return { stop: () => boss.stop({ graceful: true, close: true }) };
  },
  remainingSql: REMAINING_SQL.pgboss,
};
