// For race tests with sessions of their own: a connection with its backend
// pid, and waits for a backend to queue on a lock (pg_stat_activity), so a
// test orders two transactions by what the server shows, not by timers.
import pg from 'pg';
import { waitUntil } from './db.js';

export interface Session {
  c: pg.Client;
  pid: number;
}

/** Connections of their own for one test file or block; end() closes them all. */
export class Sessions {
  private readonly clients: pg.Client[] = [];

  /** The URL is asked for at each open: test databases are made in beforeAll, after the file's blocks are defined. */
  constructor(private readonly url: () => string) {}

  async open(): Promise<Session> {
    const c = new pg.Client({ connectionString: this.url() });
    c.on('error', () => {});
    await c.connect();
    this.clients.push(c);
    const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { c, pid: rows[0]!.pid };
  }

  async end(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.end().catch(() => {})));
  }
}

/** Whether the backend (a pid, or an application_name) waits on a lock now. */
async function waitsOnLock(pool: pg.Pool, backend: number | string): Promise<boolean> {
  const which = typeof backend === 'number' ? 'pid = $1' : 'application_name = $1';
  const { rowCount } = await pool.query(`SELECT 1 FROM pg_stat_activity WHERE ${which} AND wait_event_type = 'Lock'`, [backend]);
  return (rowCount ?? 0) > 0;
}

/** Until the backend waits on a lock. */
export async function lockWait(pool: pg.Pool, backend: number | string): Promise<void> {
  await waitUntil(() => waitsOnLock(pool, backend), { timeoutMs: 10_000, what: `backend ${backend} to wait on a lock` });
}

/** Until the backend waits on a lock, or `call` has settled (it did not need to wait). */
export async function lockWaitOrSettled(pool: pg.Pool, backend: number | string, call: Promise<unknown>): Promise<void> {
  let settled = false;
  void call.then(
    () => (settled = true),
    () => (settled = true),
  );
  await waitUntil(async () => settled || (await waitsOnLock(pool, backend)), {
    timeoutMs: 10_000,
    what: `backend ${backend} waiting on a lock, or done`,
  });
}
