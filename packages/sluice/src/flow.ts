// Flows: a small DAG of jobs (chain, fan-out, fan-in) enqueued in one
// transaction, each step waiting for the steps it comes after.
import { ValidationError } from './errors.js';
import type { EnqueueOptions } from './enqueue-options.js';
import type { JobDefinition } from './job.js';

export interface FlowStep {
  /** Names the step inside this flow, for `after`. */
  key: string;
  job: JobDefinition | string;
  payload: unknown;
  /** Keys of the steps that must complete first. */
  after?: string[];
  options?: Omit<EnqueueOptions, 'tx' | 'dependsOn'>;
}

/** Orders the steps so each comes after its parents; throws ValidationError on unknown keys or cycles. */
export function orderFlow(steps: readonly FlowStep[]): FlowStep[] {
  if (!Array.isArray(steps) || steps.length === 0) throw new ValidationError('steps', 'must be a non-empty array');
  const byKey = new Map<string, FlowStep>();
  for (const [i, s] of steps.entries()) {
    if (typeof s?.key !== 'string' || s.key.length === 0) throw new ValidationError(`steps.${i}.key`, 'must be a non-empty string');
    if (byKey.has(s.key)) throw new ValidationError(`steps.${i}.key`, `duplicate key "${s.key}"`);
    byKey.set(s.key, s);
  }
  for (const [i, s] of steps.entries()) {
    for (const parent of s.after ?? []) {
      if (!byKey.has(parent)) throw new ValidationError(`steps.${i}.after`, `no step with key "${parent}"`);
    }
  }
  const ordered: FlowStep[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: FlowStep) => {
    const seen = state.get(s.key);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new ValidationError('steps', `cycle through step "${s.key}"`);
    state.set(s.key, 'visiting');
    for (const parent of s.after ?? []) visit(byKey.get(parent)!);
    state.set(s.key, 'done');
    ordered.push(s);
  };
  steps.forEach(visit);
  return ordered;
}
