// Notification fan-out: what one NOTIFY costs the database server for each
// session LISTENing in the same database, whatever channel it listens on.
// PostgreSQL signals every listening backend of the database at each
// notifying commit (async.c, SignalBackends); each wakes, reads the queue and
// forwards what matches. This is the floor under the database CPU a job of
// many worker processes that all LISTEN: no queue design on LISTEN/NOTIFY
// avoids it. Plain node-postgres sessions, no queue: L listeners, one
// notifier sending `rate` notifications a second for `seconds`; reported:
// the whole server's CPU (postmaster tree) per notification, and the part
// each listener adds over the run without listeners.
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { treeCpuSeconds } from '../procstat.js';
import { urlFor, withAdmin } from '../db.js';

const DATABASE = `${(process.env.BENCH_DB_PREFIX ?? 'sluice_bench_').replace(/[^a-z0-9_]/g, '_')}prod_fanout`;

export interface FanoutResult {
  listeners: number;
  notifications: number;
  delivered: number;
  seconds: number;
  /** Server CPU over the run, per notification sent. */
  serverCpuUsPerNotification: number;
}

export async function fanout(listeners: number, rate: number, seconds: number): Promise<FanoutResult> {
  await withAdmin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${DATABASE}`);
  });
  const url = urlFor(DATABASE);
  const sessions: pg.Client[] = [];
  let delivered = 0;
  try {
    for (let i = 0; i < listeners; i++) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('LISTEN bench_fanout');
      c.on('notification', () => delivered++);
      sessions.push(c);
    }
    const notifier = new pg.Client({ connectionString: url });
    await notifier.connect();
    sessions.push(notifier);
    const { rows } = await notifier.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postmaster = Number((await readFile(`/proc/${rows[0]!.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[1]);
    const cpu0 = treeCpuSeconds(postmaster);
    const t0 = performance.now();
    let sent = 0;
    while (performance.now() - t0 < seconds * 1000) {
      await notifier.query("SELECT pg_notify('bench_fanout', 'queue 2 1')");
      sent++;
      const wait = t0 + (sent * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    // Let the listeners read the last ones before the CPU is read.
    const until = performance.now() + 2_000;
    while (delivered < sent * listeners && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    const cpu = treeCpuSeconds(postmaster) - cpu0;
    return { listeners, notifications: sent, delivered, seconds: (performance.now() - t0) / 1000, serverCpuUsPerNotification: (cpu * 1e6) / sent };
  } finally {
    await Promise.all(sessions.map((c) => c.end().catch(() => {})));
    await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`));
  }
}
