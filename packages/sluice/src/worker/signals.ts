// Opt-in graceful shutdown on SIGTERM/SIGINT. The library never installs
// signal handlers by itself; the CLI and applications that want it call this.
import type { Worker } from './worker.js';

export interface StopOnSignalsOptions {
  signals?: NodeJS.Signals[];
  /** Called when a second signal arrives while stopping; default exits with code 130. */
  onForce?: () => void;
}

/** Stops the worker on the first signal; a second one forces. Returns a function that removes the handlers. */
export function stopOnSignals(worker: Worker, options: StopOnSignalsOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const handler = () => {
    if (stopping) {
      (options.onForce ?? (() => process.exit(130)))();
      return;
    }
    stopping = true;
    void worker.stop();
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
