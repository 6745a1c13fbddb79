// One maintenance leader per database. The leader holds a session advisory
// lock on its LISTEN connection (a direct session even behind a transaction
// pooler) and runs the duties that need no more than one process: promoter,
// rescuer, ager, cron scheduler, retention, alert checks. Every other process
// only claims and heartbeats; its heartbeat, sent on the LISTEN session every
// LEADER_RETRY_MS_DEFAULT, also tries for the lock, so trying costs no
// transaction of its own. A leader that dies loses its session and with it
// the lock, and a follower takes over at its next beat; a leader that stops
// unlocks and says so on LEADER_CHANNEL, and a follower takes over at once.
// A leader that is alive but frozen (SIGSTOP, an event loop blocked by a
// handler) keeps its connection and the lock: it beats on its LISTEN session,
// so a follower that sees that session idle for longer than workerDeadAfterMs
// terminates it and takes the lock at its next beat.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { beatAnswer, workerEndGivenUpSession, workerHeartbeat, workerHeartbeatOnSession, workerHeartbeatTryLead, type BeatAnswer, type PeersRow, type SessionBeat } from '../sql/workers.js';
import { GIVEN_UP_END_WAIT_MS } from './give-up.js';
import type { Notifier } from './notifier.js';

/** A follower's heartbeat period when heartbeatIntervalMs is longer: it bounds the failover after a leader dies. */
export const LEADER_RETRY_MS_DEFAULT = 4_000;
// "sluldr" in ASCII: apart from the migration and maintenance locks.
const LEADER_LOCK_KEY = 0x736c756c6472;
/** Announced by a leader that steps down, so a follower takes over without waiting. */
export const LEADER_CHANNEL = 'sluice_leader';

export interface Duty {
  start(): void;
  stop(): Promise<void>;
}

export class Leadership {
  private leader = false;
  private stopped = false;
  /** Duty starts and stops, in order, so a quick loss and win never overlap two sets. */
  private changing: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: Queryable,
    private readonly notifier: Notifier,
    private readonly duties: Duty[],
    private readonly deadAfterMs: number,
    /** A statement on the LISTEN session unanswered this long gives the session up (worker/give-up.ts). */
    private readonly sessionTimeoutMs: number,
    /** Called with true when this process becomes leader, false when it stops being one. */
    private readonly onChange: (leader: boolean) => void,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leader;
  }

  /** Milliseconds until the next beat. */
  nextBeatMs(heartbeatIntervalMs: number): number {
    return this.leader ? heartbeatIntervalMs : Math.min(heartbeatIntervalMs, LEADER_RETRY_MS_DEFAULT);
  }

  /**
   * The heartbeat, on the LISTEN session; a follower's also bids for the lock.
   * Resolves with what the beat found (see BeatAnswer) and the queues' peers
   * (see workerHeartbeatOnSession; undefined when the beat went on the pool).
   */
  async beat(b: SessionBeat): Promise<BeatAnswer & { peers: PeersRow['peers'] | undefined }> {
    const onPool = async () => {
      const answer = await workerHeartbeat(this.pool, b.workerId, b.leaseMs, b.heldIds, b.queues, b.unstartedIds);
      await this.endGivenUpSession(b.workerId);
      return { ...answer, peers: undefined };
    };
    if (this.leader || this.stopped) {
      const rows = await this.onSession<PeersRow>('sluice_beat_on_session', ...workerHeartbeatOnSession(b, this.deadAfterMs, this.leader));
      if (rows === null) return onPool();
      return { ...beatAnswer(rows[0]), peers: rows[0]?.peers };
    }
    const rows = await this.onSession<PeersRow & { leader: boolean; deposed: boolean | null }>(
      'sluice_beat_try_lead',
      ...workerHeartbeatTryLead(b, LEADER_LOCK_KEY, this.deadAfterMs),
    );
    // Disconnected: beat on the pool and bid again once the session is back.
    if (rows === null) return onPool();
    if (rows[0]?.deposed) this.logger.warn('ended the session of a maintenance leader that stopped beating; taking over');
    const answer = { ...beatAnswer(rows[0]), peers: rows[0]?.peers };
    if (!rows[0]?.leader) return answer;
    if (this.stopped) {
      await this.unlock(false);
      return answer;
    }
    this.leader = true;
    this.logger.info('elected maintenance leader');
    this.changing = this.changing.then(() => {
      for (const duty of this.duties) duty.start();
    });
    this.onChange(true);
    return answer;
  }

  /**
   * A beat sent on a session given up as stuck may still reach the server
   * (sent, only delayed): landing after the pool's beat, it recorded that
   * session as this worker's, and the session's end was then taken for this
   * process's death, its jobs rescued as they ran. After the pool's beat, the
   * session's server process is ended, and such a record undone. Ended before
   * the pool's beat, its end would start the rescuer's grace while that beat
   * was still on its way, which on a slow server is what the hold avoids.
   */
  private async endGivenUpSession(workerId: string): Promise<void> {
    const pid = this.notifier.givenUpPid;
    if (pid === null) return;
    await workerEndGivenUpSession(this.pool, workerId, pid, GIVEN_UP_END_WAIT_MS).catch((err: unknown) =>
      this.logger.warn({ err }, 'could not end the LISTEN session given up as stuck'),
    );
  }

  /**
   * Null when the session is down, or went down under the statement (the beat then goes on the pool).
   * The beats are prepared on the session under `name`: planned afresh, a follower's beat (its
   * CTEs, sublinks and the pg_locks branch) cost ~3 ms of planning each time; its statements
   * reach sluice.jobs only through functions, which keep their own plans.
   */
  private async onSession<R extends { [column: string]: unknown }>(name: string, text: string, values: unknown[]): Promise<R[] | null> {
    try {
      return await this.notifier.onSession<R>(text, values, this.sessionTimeoutMs, name);
    } catch (err) {
      if (this.notifier.connected) throw err;
      return null;
    }
  }

  /** The LISTEN session ended: the lock went with it. */
  sessionLost(): void {
    if (!this.leader) return;
    this.leader = false;
    this.logger.warn('LISTEN connection lost: no longer maintenance leader');
    this.changing = this.changing.then(() => this.stopDuties());
    this.onChange(false);
  }

  private async stopDuties(): Promise<void> {
    await Promise.all(this.duties.map((d) => d.stop()));
  }

  private async unlock(announce: boolean): Promise<void> {
    // The NOTIFY is delivered at commit, after the unlock: the follower it wakes finds the lock free.
    const text = announce ? `SELECT pg_advisory_unlock($1), pg_notify('${LEADER_CHANNEL}', '')` : 'SELECT pg_advisory_unlock($1)';
    await this.notifier
      .onSession(text, [LEADER_LOCK_KEY], this.sessionTimeoutMs)
      .catch((err) => this.logger.warn({ err }, 'could not release leadership; it passes when this connection closes'));
  }

  /** A leader stops its duties, releases the lock and tells the others. Call before the notifier stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.changing;
    if (!this.leader) return;
    this.leader = false;
    await this.stopDuties();
    await this.unlock(true);
    this.onChange(false);
  }
}
