// Argument checks shared by the operations commands. Each failure is a
// UsageError naming the argument, raised before anything is written.
import { NAME_PATTERN, NAME_RULE } from '../../config.js';
import type { JobState } from '../../job-record.js';
import { JOB_STATES } from '../../sql/job-list.js';
import { UsageError } from '../usage.js';

export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export function str(values: Values, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function name(arg: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  if (!NAME_PATTERN.test(value)) throw new UsageError(arg, NAME_RULE);
  return value;
}

export function int(arg: string, value: string | undefined, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(arg, `must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

/** An integer, or "none" to clear the setting (null). */
export function intOrNone(arg: string, value: string | undefined, range?: { min?: number; max?: number }): number | null | undefined {
  if (value === 'none') return null;
  return int(arg, value, range);
}

export function bool(arg: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(arg, 'must be true or false');
}

export function jobId(arg: string, value: string | undefined): number {
  if (value === undefined || !/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(arg, 'must be a positive integer job id');
  }
  return Number(value);
}

export function noPositionals(positionals: string[]): void {
  if (positionals.length) throw new UsageError(positionals[0]!, 'unexpected argument');
}

export function state(arg: string, value: string | undefined): JobState | null {
  if (value === undefined) return null;
  if (!(JOB_STATES as readonly string[]).includes(value)) throw new UsageError(arg, `must be one of ${JOB_STATES.join(', ')}`);
  return value as JobState;
}

/** Resolves once SIGINT or SIGTERM arrives; the listeners are removed afterwards. */
export function untilSignal(): { promise: Promise<void>; dispose: () => void } {
  let resolveFn!: () => void;
  const promise = new Promise<void>((r) => (resolveFn = r));
  const onSignal = () => resolveFn();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
