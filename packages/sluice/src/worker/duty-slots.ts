// A leader's duties share the worker's pool with its claims and
// acknowledgements. Each duty holds at most one connection at a time, but a
// leader runs up to six (promoter, rescuer, ager, scheduler, maintenance,
// alerts), and on a network freeze each one's statement on a silent
// connection holds that connection for DUTY_GIVE_UP_MS: four of them took the
// whole default pool, and acknowledgements and claims waited for a free
// connection, a wait no give-up bounds. Together the duties take at most the
// pool less one connection (and less the LISTEN session's, when it comes
// from the same pool), so the hot path has one, except in the smallest pools:
// the duties keep one, and a pool of 2 carrying the LISTEN session has none left.
import pLimit from 'p-limit';
import type { DutyDb } from '../silent-connections.js';

/** How many connections of a pool of poolMax the duties may hold at once: at least one. */
export function dutySlots(poolMax: number, listenInPool: boolean): number {
  return Math.max(1, poolMax - (listenInPool ? 1 : 0) - 1);
}

/** The same duty statements and transactions, at most `slots` of them at a time, in the order they came. */
export function sharingSlots(duty: DutyDb, slots: number): DutyDb {
  const limit = pLimit(slots);
  return {
    db: { query: (config) => limit(() => duty.db.query(config)) } as DutyDb['db'],
    transaction: (fn) => limit(() => duty.transaction(fn)),
  };
}
