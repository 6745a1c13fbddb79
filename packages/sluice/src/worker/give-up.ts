// How long the worker waits for an answer before it takes a connection for
// silent (a network partition, or a proxy that dropped the flow, leaves a
// socket open and silent for as long as TCP allows) and gives the statement
// up: see Notifier.onSession and SilenceGuard (silent-connections.ts).

/** The least wait for a claim or an acknowledgement: a busy server's slow statement is not a silent connection. */
export const STATEMENT_GIVE_UP_MIN_MS = 10_000;

/**
 * A beat: the beat that follows it on the pool must still land before the
 * leases lapse. The last beat that landed may have begun an interval before
 * the stuck one, so the leases have deadAfterMs - heartbeatIntervalMs left
 * when the stuck beat begins; half of that goes to the wait, half to the
 * next beat. Never under one interval (the next beat is due then anyway).
 */
export function beatGiveUpMs(heartbeatIntervalMs: number, deadAfterMs: number): number {
  return Math.max(heartbeatIntervalMs, Math.floor((deadAfterMs - heartbeatIntervalMs) / 2));
}

/**
 * A claim or an acknowledgement: a lease at least. The one wait a claim can
 * meet on the server, a limited queue's row, is cut at 2 s there
 * (jobs/claim.sql), so a given-up claim does not commit later; one held up
 * otherwise (a stalled server) may, and its jobs come back through the
 * rescuer when their leases lapse. An unwritten acknowledgement keeps its
 * job's lease extended by the beats meanwhile.
 */
export function statementGiveUpMs(deadAfterMs: number): number {
  return Math.max(deadAfterMs, STATEMENT_GIVE_UP_MIN_MS);
}

/**
 * A leader's duty (promoter, rescuer, ager, scheduler, maintenance, alerts).
 * Unbounded, one that met a silent connection held it, and one of the pool's
 * few connections, forever: the leader kept its LISTEN session, so its lock,
 * and nobody rescued, promoted or fired a schedule again. Their statements
 * are short batches, but a busy server's maintenance batch or a lock wait may
 * take a while: a minute.
 */
export const DUTY_GIVE_UP_MS = 60_000;

/**
 * How long a stopping worker waits for its duties' statements before it
 * closes their connections: a healthy one is done in milliseconds, and one on
 * a silent connection would hold the stop, and the leadership's hand-over,
 * for DUTY_GIVE_UP_MS. Each duty's write is one statement or transaction: one
 * cut short commits whole (the server finishes what it already runs) or not at
 * all, and the next leader does what is left.
 */
export const DUTY_STOP_GRACE_MS = 2_000;

/** How long a beat waits for the server to end a LISTEN session given up as stuck before it goes on. */
export const GIVEN_UP_END_WAIT_MS = 1_000;
