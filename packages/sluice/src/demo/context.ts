// What every section of the demo works with.
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import type { Sluice, Worker } from '../index.js';
import type { DemoWorld } from './jobs.js';

export interface DemoContext {
  /** The application's pool: its own queries, transactions, and the Sluice client. */
  pool: pg.Pool;
  db: NodePgDatabase;
  sluice: Sluice;
  /** Created up front, started in section 1, stopped at the end. */
  worker: Worker;
  world: DemoWorld;
}
