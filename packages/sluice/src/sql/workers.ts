// Runtime SQL for the worker registry.
import type { Queryable } from '../executor.js';

export interface WorkerRow {
  id: string;
  service: string | null;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  version: string;
}

export async function workerRegister(db: Queryable, w: WorkerRow): Promise<void> {
  await db.query({
    name: 'sluice_worker_register',
    text: `INSERT INTO sluice.workers (id, service, host, pid, queues, concurrency, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
    values: [w.id, w.service, w.host, w.pid, w.queues, w.concurrency, w.version],
  });
}

/**
 * Records a beat and extends the leases of the jobs this worker holds in
 * memory. Only those: a claim whose reply never arrived (lost connection)
 * is locked_by this worker too, and must lapse so the rescuer frees it.
 */
export async function workerHeartbeat(db: Queryable, workerId: string, leaseMs: number, heldIds: number[]): Promise<void> {
  await db.query({
    name: 'sluice_worker_heartbeat',
    text: `WITH beat AS (UPDATE sluice.workers SET heartbeat_at = now() WHERE id = $1)
           UPDATE sluice.jobs SET locked_until = now() + $2 * interval '1 millisecond'
           WHERE state = 'running' AND locked_by = $1 AND id = ANY($3::bigint[])`,
    values: [workerId, leaseMs, heldIds],
  });
}

/** Removes workers silent for longer than forgetAfterMs that hold no job. */
export async function workerReap(db: Queryable, forgetAfterMs: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'sluice_worker_reap',
    text: `SELECT sluice.reap_workers($1) AS n`,
    values: [forgetAfterMs],
  });
  return rows[0]?.n ?? 0;
}

export async function workerDeregister(db: Queryable, workerId: string): Promise<void> {
  await db.query({
    name: 'sluice_worker_deregister',
    text: `DELETE FROM sluice.workers WHERE id = $1`,
    values: [workerId],
  });
}
