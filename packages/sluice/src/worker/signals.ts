// Opt-in graceful shutdown on SIGTERM/SIGINT. The library never installs
// signal handlers by itself; the CLI and applications that want it call this.
import { constants } from 'node:os';
import { ValidationError } from '../errors.js';
import type { Worker } from './worker.js';

export interface StopOnSignalsOptions {
  /** Signal names (os.constants.signals) that stop the worker; SIGKILL and SIGSTOP cannot be caught. Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[];
  /** Called when a second signal arrives while stopping; default exits with code 130. */
  onForce?: () => void;
}

const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP']);

/** Stops the worker on the first signal; a second one forces. Returns a function that removes the handlers. */
export function stopOnSignals(worker: Worker, options: StopOnSignalsOptions = {}): () => void {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  const signals = checkSignals(options.signals ?? ['SIGTERM', 'SIGINT']);
  if (options.onForce !== undefined && typeof options.onForce !== 'function') throw new ValidationError('onForce', 'must be a function');
  let stopping = false;
  const handler = () => {
    if (stopping) {
      (options.onForce ?? (() => process.exit(130)))();
      return;
    }
    stopping = true;
    void worker.stop();
  };
  const installed: NodeJS.Signals[] = [];
  const off = () => {
    for (const s of installed) process.off(s, handler);
  };
  for (const [i, s] of signals.entries()) {
    // Listed twice, the handler would run twice and the first delivery would force.
    if (installed.includes(s)) continue;
    try {
      process.on(s, handler);
    } catch (err) {
      // All or none: a platform that refuses one signal must not leave the others installed.
      process.off(s, handler);
      off();
      throw new ValidationError(`signals.${i}`, `${s} cannot be listened for on this platform`, { cause: err });
    }
    installed.push(s);
  }
  return off;
}

function checkSignals(signals: unknown): NodeJS.Signals[] {
  if (!Array.isArray(signals) || signals.length === 0) {
    throw new ValidationError('signals', "must be a non-empty array of signal names such as ['SIGTERM', 'SIGINT']");
  }
  for (const [i, s] of signals.entries()) {
    if (typeof s !== 'string' || !Object.hasOwn(constants.signals, s)) {
      throw new ValidationError(`signals.${i}`, 'must be a signal name from os.constants.signals, such as SIGTERM');
    }
    if (UNCATCHABLE.has(s)) throw new ValidationError(`signals.${i}`, `${s} cannot be caught by any process`);
  }
  return signals as NodeJS.Signals[];
}
