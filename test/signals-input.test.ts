// stopOnSignals checks its options before it installs anything: a list that
// is not an array of signal names a process can catch is a ValidationError,
// and no handler is left behind. Nothing here sends a real signal: the
// handlers are run with process.emit.
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError, stopOnSignals, type Worker } from '../packages/sluice/src/index.js';

function fakeWorker(): Worker & { stops: number } {
  const w = {
    stops: 0,
    stop: async () => {
      w.stops++;
    },
  };
  return w as unknown as Worker & { stops: number };
}

const WATCHED = ['SIGINT', 'SIGTERM', 'SIGUSR2', 'SIGWINCH'] as const;
const counts = () => Object.fromEntries(WATCHED.map((s) => [s, process.listenerCount(s)])) as Record<(typeof WATCHED)[number], number>;
const baseline = counts();

afterEach(() => {
  // A failing test must not leave its handlers to the next one.
  for (const s of WATCHED) for (const l of process.listeners(s).slice(baseline[s])) process.off(s, l as () => void);
});

function refused(options: unknown): ValidationError {
  try {
    stopOnSignals(fakeWorker(), options as never)();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('stopOnSignals refuses what it could not listen for, and installs nothing', () => {
  it.each<[string, unknown, string]>([
    ['a string, not an array (it would listen for "S", "I", "G", ...)', 'SIGTERM', 'signals'],
    ['an empty array (it would stop on nothing)', [], 'signals'],
    ['a name that is not a signal', ['SIGTERM', 'SIGTEMR'], 'signals.1'],
    ['a lower-case name', ['sigterm'], 'signals.0'],
    ['a signal number', [15], 'signals.0'],
    ['SIGKILL, which no process can catch', ['SIGINT', 'SIGKILL'], 'signals.1'],
    ['SIGSTOP, which no process can catch', ['SIGSTOP'], 'signals.0'],
  ])('signals that are %s', (_what, signals, field) => {
    const err = refused({ signals });
    expect(err.field).toBe(field);
    expect(counts()).toEqual(baseline);
  });

  it('onForce that is not a function', () => {
    expect(refused({ onForce: 'exit' }).field).toBe('onForce');
    expect(counts()).toEqual(baseline);
  });
});

describe('stopOnSignals with good options', () => {
  it('stops on the first signal, forces on the second, and the returned function removes every handler', () => {
    const worker = fakeWorker();
    let forced = 0;
    const off = stopOnSignals(worker, { signals: ['SIGUSR2', 'SIGWINCH'], onForce: () => forced++ });
    expect(counts()).toEqual({ ...baseline, SIGUSR2: baseline.SIGUSR2 + 1, SIGWINCH: baseline.SIGWINCH + 1 });
    process.emit('SIGUSR2', 'SIGUSR2');
    expect([worker.stops, forced]).toEqual([1, 0]);
    process.emit('SIGWINCH', 'SIGWINCH');
    expect([worker.stops, forced]).toEqual([1, 1]);
    off();
    expect(counts()).toEqual(baseline);
  });

  it('a signal listed twice is listened for once: its first delivery stops, it does not force', () => {
    const worker = fakeWorker();
    let forced = 0;
    const off = stopOnSignals(worker, { signals: ['SIGUSR2', 'SIGUSR2'], onForce: () => forced++ });
    process.emit('SIGUSR2', 'SIGUSR2');
    off();
    expect([worker.stops, forced]).toEqual([1, 0]);
    expect(counts()).toEqual(baseline);
  });
});
