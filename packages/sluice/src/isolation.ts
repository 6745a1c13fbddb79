// sluice's claims, and enqueues into bounded queues, count before they write,
// after waiting for a queue's row lock: only READ COMMITTED gives the count
// a snapshot taken after that wait. The functions refuse any other level
// (SLI01); a worker checks its session's default at start, so one deployed
// on a role or database set to REPEATABLE READ fails there with a named
// error instead of logging a refused claim every poll.
import { IsolationLevelError } from './errors.js';
import type { Queryable } from './executor.js';
import { sessionIsolationLevel } from './sql/session.js';

export async function requireReadCommitted(db: Queryable, what: string): Promise<void> {
  const level = await sessionIsolationLevel(db);
  if (level !== 'read committed') throw new IsolationLevelError(level, what);
}
