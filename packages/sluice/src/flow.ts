// Flows: a small DAG of jobs (chain, fan-out, fan-in) enqueued in one
// transaction, each step waiting for the steps it comes after.
import { enqueueOptionsSchema, parseOptions } from './config.js';
import { ValidationError } from './errors.js';
import type { EnqueueOptions } from './enqueue-options.js';
import type { AnyJob, JobId, JobPayload, JobResult, NameOf, Resolve } from './job.js';

export type FlowStepOptions = Omit<EnqueueOptions, 'tx' | 'dependsOn'>;

export interface FlowStep<J = AnyJob | string> {
  /** Names the step inside this flow, for `after`. */
  key: string;
  job: J;
  payload: unknown;
  /** Keys of the steps that must complete first. */
  after?: readonly string[];
  options?: FlowStepOptions;
}

/** Each step as given, its payload checked against its job's schema and `after` against the step keys. */
export type CheckedSteps<Jobs extends readonly AnyJob[], T extends readonly FlowStep<AnyJob | NameOf<Jobs>>[]> = {
  [I in keyof T]: {
    key: T[I]['key'];
    job: T[I]['job'];
    payload: JobPayload<Resolve<Jobs, T[I]['job']>>;
    after?: readonly T[number]['key'][];
    options?: FlowStepOptions;
  };
};

/** What flow() returns: each step's job id by its key. */
export type FlowIds<Jobs extends readonly AnyJob[], T extends readonly FlowStep<AnyJob | NameOf<Jobs>>[]> = {
  [S in T[number] as S['key']]: JobId<JobResult<Resolve<Jobs, S['job']>>>;
};

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

// A step's parents get their ids only as the flow is written, after its
// arguments were built and checked, so dependsOn's limits are applied here.
const parentsSchema = enqueueOptionsSchema.pick({ dependsOn: true });

/** The ids of a step's parents (in `ids` by key), held to the limits of dependsOn. */
export function parentIds(step: FlowStep, ids: Readonly<Record<string, number>>): number[] {
  const dependsOn = (step.after ?? []).map((k) => ids[k]!);
  parseOptions(parentsSchema, { dependsOn }, 'options');
  return dependsOn;
}
