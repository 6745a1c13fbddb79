// What every system adapter offers the scenarios. Adapters load only in the
// child process that runs them, so a peer needing a newer Node never loads
// in the parent.

export type SystemKey = 'sluice' | 'graphile' | 'pgboss' | 'bare';

/** `i` numbers the job; `t` is performance.now() at enqueue, for latency. */
export interface Payload {
  i: number;
  t?: number;
}

export interface Producer {
  /** One job in its own transaction. */
  enqueueOne(payload: Payload): Promise<void>;
  /** Many jobs with the system's bulk call. */
  enqueueMany(payloads: Payload[]): Promise<void>;
  close(): Promise<void>;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

export interface SystemAdapter {
  key: SystemKey;
  /** Package version actually loaded. */
  version(): Promise<string>;
  /** Creates the system's schema in an empty database. */
  install(url: string): Promise<void>;
  producer(url: string, options: Record<string, unknown>): Promise<Producer>;
  /** The job ends when onJob's promise settles (at once when it returns nothing). */
  startWorker(url: string, options: Record<string, unknown>, onJob: (p: Payload) => void | Promise<void>): Promise<RunningWorker>;
  /** Counts jobs not finished yet (waiting or running); zero means drained. */
  remainingSql: string;
}
