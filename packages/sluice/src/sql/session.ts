// What a connection's session is set to, as far as sluice depends on it.
import type { Queryable } from '../executor.js';

/** The isolation level a transaction on this connection gets by default ('read committed', 'repeatable read', 'serializable'). */
export async function sessionIsolationLevel(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ level: string }>({ text: `SELECT current_setting('transaction_isolation') AS level` });
  return rows[0]!.level;
}
