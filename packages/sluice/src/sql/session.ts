// What a connection's session is set to, as far as sluice depends on it.
import type { Queryable } from '../executor.js';

/** The isolation level a transaction on this connection gets by default ('read committed', 'repeatable read', 'serializable'). */
export async function sessionIsolationLevel(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ level: string }>({ text: `SELECT current_setting('transaction_isolation') AS level` });
  return rows[0]!.level;
}

/**
 * The database's clock. Schedules' next fire times are worked out from it,
 * not from this process's: the scheduler compares them with the database's
 * time, and a process whose clock is ahead would skip fires, one behind fire
 * one twice.
 */
export async function databaseNow(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>({ name: 'sluice_database_now', text: 'SELECT clock_timestamp() AS now' });
  return rows[0]!.now;
}
