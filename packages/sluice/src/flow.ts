// Flows: a small DAG of jobs (chain, fan-out, fan-in) enqueued in one
// transaction, each step waiting for the steps it comes after.
import { z } from 'zod';
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

/** A step as orderFlow returns it: with its place in the list given, for errors that name it. */
export interface OrderedStep {
  step: FlowStep;
  index: number;
}

// The flow gives every step its transaction (flow's own tx) and its parents
// (`after`): a step's own tx or dependsOn would be ignored, so they are refused.
const stepSchema = z.strictObject({
  // Checked below and by the job's schema, each with its own message.
  key: z.unknown().optional(),
  job: z.unknown().optional(),
  payload: z.unknown().optional(),
  // A step's parents become its dependsOn, held to the same limit.
  after: z.array(z.string()).max(1000).optional(),
  options: enqueueOptionsSchema.omit({ tx: true, dependsOn: true }).optional(),
});

/**
 * Checks every step's shape and orders the steps so each comes after its
 * parents; throws ValidationError naming the step on unknown keys or fields,
 * bad options, too many parents, or cycles.
 */
export function orderFlow(steps: readonly FlowStep[]): OrderedStep[] {
  if (!Array.isArray(steps) || steps.length === 0) throw new ValidationError('steps', 'must be a non-empty array');
  const byKey = new Map<string, OrderedStep>();
  for (const [i, s] of steps.entries()) {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new ValidationError(`steps.${i}`, 'expected { key, job, payload }');
    parseOptions(stepSchema, s, `steps.${i}`);
    if (typeof s.key !== 'string' || s.key.length === 0) throw new ValidationError(`steps.${i}.key`, 'must be a non-empty string');
    if (byKey.has(s.key)) throw new ValidationError(`steps.${i}.key`, `duplicate key "${s.key}"`);
    byKey.set(s.key, { step: s, index: i });
  }
  for (const [i, s] of steps.entries()) {
    for (const parent of s.after ?? []) {
      if (!byKey.has(parent)) throw new ValidationError(`steps.${i}.after`, `no step with key "${parent}"`);
    }
  }
  const ordered: OrderedStep[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (o: OrderedStep) => {
    const seen = state.get(o.step.key);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new ValidationError('steps', `cycle through step "${o.step.key}"`);
    state.set(o.step.key, 'visiting');
    for (const parent of o.step.after ?? []) visit(byKey.get(parent)!);
    state.set(o.step.key, 'done');
    ordered.push(o);
  };
  for (const s of steps) visit(byKey.get(s.key)!);
  return ordered;
}

/** The ids of a step's parents (in `ids` by key); orderFlow has checked them. */
export function parentIds(step: FlowStep, ids: Readonly<Record<string, number>>): number[] {
  return (step.after ?? []).map((k) => ids[k]!);
}

/** A ValidationError about a step's `options.*`, renamed to say which step (`steps.<i>.options.*`). */
export function inStep(err: unknown, index: number): unknown {
  if (!(err instanceof ValidationError) || !/^options(\.|\[|$)/.test(err.field)) return err;
  return new ValidationError(`steps.${index}.${err.field}`, err.message.slice(err.field.length + 2), { cause: err });
}
