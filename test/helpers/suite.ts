// The setup most test files share: a database of their own, a Sluice on it,
// and workers that are stopped after each test.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Sluice, createWorker, type Worker, type WorkerOptions } from '../../packages/sluice/src/index.js';
import { createTestDb, type TestDb } from './db.js';

export interface Suite {
  db: TestDb;
  sluice: Sluice;
  /** Workers started in the current test, not yet stopped. */
  readonly workers: readonly Worker[];
  /** A worker on the suite's database, stopped after the test; `defaults` first, then `options`. */
  startWorker(options: Omit<WorkerOptions, 'connectionString'> & Partial<Pick<WorkerOptions, 'connectionString'>>): Worker;
}

export function useSuite(defaults: Partial<WorkerOptions> = {}): Suite {
  const workers: Worker[] = [];
  // db and sluice are filled in by beforeAll, before any test reads them.
  const suite = {
    workers,
    startWorker(options: Parameters<Suite['startWorker']>[0]) {
      // A worker given its own pool takes no connection string beside it.
      const connection = options.pool ? {} : { connectionString: suite.db.url };
      const w = createWorker({ ...connection, ...defaults, ...options } as WorkerOptions);
      workers.push(w);
      return w;
    },
  } as unknown as Suite;
  beforeAll(async () => {
    suite.db = await createTestDb();
    suite.sluice = new Sluice({ pool: suite.db.pool });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });
  afterAll(async () => {
    await suite.sluice.close();
    await suite.db.drop();
  });
  return suite;
}
