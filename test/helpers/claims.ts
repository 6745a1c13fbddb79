// A real pg Pool for a worker under test that says when one of the worker's
// claims came back empty: the positive signal that the worker looked for jobs
// and the database gave it none (a paused queue, a child still waiting for its
// parents), where waiting a while and seeing nothing run would also pass if
// the worker had not looked at all.
import pg from 'pg';

/** The name of the worker's claim statement (packages/sluice/src/sql/job-leases.ts, jobClaim). */
const CLAIM_STATEMENT = 'sluice_job_claim';

export class ClaimWatchingPool extends pg.Pool {
  private claimsBegun = 0;
  private readonly waiters: { after: number; resolve: () => void }[] = [];

  constructor(connectionString: string) {
    // The worker sends its claims on connections it checks out (its statements
    // are given up on a silent connection: silent-connections.ts), so they are
    // watched on the client.
    const watching: { pool?: ClaimWatchingPool } = {};
    class WatchingClient extends pg.Client {
      override query(...args: unknown[]): never {
        const result = (super.query as (...a: unknown[]) => unknown)(...args);
        return (watching.pool ? watching.pool.watch(args[0], result) : result) as never;
      }
    }
    super({ connectionString, max: 4, Client: WatchingClient });
    watching.pool = this;
  }

  private held: { arrived: () => void; gate: Promise<void> } | null = null;
  private losing: (() => void) | null = null;

  private watch(first: unknown, sent: unknown): unknown {
    let result = sent;
    const config = first as { name?: unknown } | undefined;
    if (config?.name === CLAIM_STATEMENT && result instanceof Promise && this.losing) {
      // Committed on the server; the answer is lost on the way, as with a connection that died after the commit.
      result = result.then((r: pg.QueryResult) => {
        const lost = this.losing;
        if (r.rows.length === 0 || !lost) return r;
        this.losing = null;
        lost();
        throw new Error('Connection terminated unexpectedly');
      });
    }
    if (config?.name === CLAIM_STATEMENT && result instanceof Promise && this.held) {
      // The first claim that takes a job has run and committed on the server; only its answer waits.
      result = result.then(async (r: pg.QueryResult) => {
        const held = this.held;
        if (r.rows.length === 0 || !held) return r;
        this.held = null;
        held.arrived();
        await held.gate;
        return r;
      });
    }
    if (config?.name === CLAIM_STATEMENT && result instanceof Promise) {
      const seq = ++this.claimsBegun;
      result.then(
        (r: pg.QueryResult) => {
          if (r.rows.length > 0) return;
          for (const w of this.waiters.filter((x) => seq > x.after)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve();
          }
        },
        () => {},
      );
    }
    return result;
  }

  /**
   * The next claim that takes a job runs on the server, but its answer reaches
   * the worker only once release() is called; `arrived` resolves when the server has answered.
   */
  holdNextClaim(): { arrived: Promise<void>; release: () => void } {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const arrived = new Promise<void>((r) => (this.held = { arrived: r, gate }));
    return { arrived, release };
  }

  /** The next claim that takes a job commits on the server, and the worker gets an error instead of its answer; resolves when that happened. */
  loseNextClaimAnswer(): Promise<void> {
    return new Promise((r) => (this.losing = r));
  }

  /** Resolves once a claim begun after this call has returned no job. */
  nextEmptyClaim(timeoutMs = 30_000): Promise<void> {
    const after = this.claimsBegun;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no empty claim within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ after, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}
