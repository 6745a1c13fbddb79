// Turns enqueue options and payloads into the arguments of
// sluice.enqueue_many: validation first, so bad input writes nothing.
import { BLOCK_TIMEOUT_MS_DEFAULT, STORABLE_TEXT_RULE, enqueueOptionsSchema, parseOptions, priorityValue, type PriorityName } from './config.js';
import { PayloadTooLargeError, PayloadValidationError, ValidationError } from './errors.js';
import type { Executor } from './executor.js';
import { checkStoredPayload, parsePayload, type AnyJob } from './job.js';
import { jsonText, unstorable } from './json-text.js';
import type { EnqueueManyArgs } from './sql/jobs.js';

export interface EnqueueOptions {
  /** The caller's transaction or connection: the job commits or rolls back with it. */
  tx?: Executor;
  /** When the job may run. Exclusive with delayMs. */
  runAt?: Date;
  /** Milliseconds from now until the job may run. Exclusive with runAt. */
  delayMs?: number;
  /** A number (higher first) or critical, high, normal, low. */
  priority?: number | PriorityName;
  maxAttempts?: number;
  /** Time limit of each attempt in milliseconds; overrides the job definition's. */
  timeoutMs?: number;
  /** While a live job has this key in the queue, enqueue returns that job's id instead. */
  uniqueKey?: string;
  /**
   * Also return a job with this key that completed less than this long ago; needs uniqueKey, and a
   * queue that keeps history (keepHistory false: ValidationError). Default: the queue's setting.
   */
  uniqueWindowMs?: number;
  tags?: string[];
  /** Jobs sharing a group key count against the queue's groupConcurrency together (e.g. a tenant id). */
  groupKey?: string;
  /** Job ids that must complete before this one runs. */
  dependsOn?: number[];
  /** When a parent dies: 'dead' sends this job to the dead-letter queue (default), 'cancel' cancels it. */
  onParentDead?: 'dead' | 'cancel';
  /**
   * On a full queue whose overflow is 'block': how long to wait for room
   * before QueueFullError, in milliseconds (0: do not wait). Default 30000.
   * Waiting inside `tx` holds that transaction open.
   */
  blockTimeoutMs?: number;
}

export type EnqueueManyOptions = Omit<EnqueueOptions, 'uniqueKey' | 'uniqueWindowMs' | 'groupKey'> & {
  /** One group key per payload, or one for all. */
  groupKey?: string | ((payload: unknown, index: number) => string | undefined);
};

/** One checked enqueue statement: its arguments, the caller's transaction, and how long it may wait for room. */
export interface EnqueueBuild {
  args: EnqueueManyArgs & { waitWhenFull: true };
  tx: Executor | undefined;
  blockTimeoutMs: number;
}

export function buildEnqueueArgs(
  job: AnyJob,
  payloads: readonly unknown[],
  options: EnqueueOptions | EnqueueManyOptions,
  maxPayloadBytes: number,
  extra: { many: boolean },
): EnqueueBuild {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new ValidationError('options', 'must be an object');
  const { groupKey, ...rest } = options as EnqueueManyOptions;
  // A unique key names one job; on a batch it would silently dedupe nothing.
  for (const key of ['uniqueKey', 'uniqueWindowMs'] as const) {
    if (extra.many && key in rest) throw new ValidationError(`options.${key}`, 'is for enqueue() of one job, not enqueueMany()');
  }
  const opts = parseOptions(enqueueOptionsSchema, { ...rest, ...(typeof groupKey === 'string' ? { groupKey } : {}) }, 'options');
  if (groupKey !== undefined && typeof groupKey !== 'string' && typeof groupKey !== 'function') {
    throw new ValidationError('options.groupKey', 'must be a string or a function of the payload');
  }
  // The window widens what a key finds; without a key nothing is looked for.
  if (opts.uniqueWindowMs !== undefined && opts.uniqueKey === undefined) {
    throw new ValidationError('options.uniqueWindowMs', 'needs uniqueKey: the window says how long a completed job with that key still counts');
  }
  if (opts.runAt && opts.delayMs !== undefined) {
    throw new ValidationError('options.delayMs', 'give runAt or delayMs, not both');
  }
  // Each payload is serialized once: the text measured for the size limit is
  // the text sent, joined into the statement's JSON array.
  const parsed = new Array<unknown>(payloads.length);
  const json = new Array<string>(payloads.length);
  for (let i = 0; i < payloads.length; i++) {
    const value = parsePayload(job, payloads[i]);
    const text = jsonText(value);
    if (typeof text !== 'string') throw new PayloadValidationError(job.name, [{ path: text.path, message: text.reason }]);
    const size = Buffer.byteLength(text);
    if (size > maxPayloadBytes) throw new PayloadTooLargeError(job.name, size, maxPayloadBytes);
    checkStoredPayload(job, text);
    parsed[i] = value;
    json[i] = text;
  }
  let groupKeys: (string | null)[] | null = null;
  if (typeof groupKey === 'function') {
    groupKeys = parsed.map((p, i) => {
      const key = groupKey(p, i);
      if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) {
        throw new ValidationError(`options.groupKey[${i}]`, 'must return a string of 1-256 characters or undefined');
      }
      if (key !== undefined && unstorable(key)) throw new ValidationError(`options.groupKey[${i}]`, STORABLE_TEXT_RULE);
      return key ?? null;
    });
  } else if (opts.groupKey !== undefined) {
    groupKeys = parsed.map(() => opts.groupKey!);
  }
  const runAt = opts.runAt ?? (opts.delayMs !== undefined ? new Date(Date.now() + opts.delayMs) : null);
  return {
    tx: opts.tx as Executor | undefined,
    blockTimeoutMs: opts.blockTimeoutMs ?? BLOCK_TIMEOUT_MS_DEFAULT,
    args: {
      name: job.name,
      payloadsJson: `[${json.join(',')}]`,
      queue: job.queue,
      runAt,
      priority: opts.priority === undefined ? job.priority : priorityValue(opts.priority),
      maxAttempts: opts.maxAttempts ?? job.maxAttempts,
      timeoutMs: opts.timeoutMs ?? job.timeoutMs ?? null,
      backoff: job.backoff,
      uniqueKeys: opts.uniqueKey === undefined ? null : parsed.map(() => opts.uniqueKey!),
      tags: opts.tags ?? null,
      groupKeys,
      dependsOn: opts.dependsOn ?? null,
      onParentDead: opts.onParentDead ?? 'dead',
      batchId: null,
      uniqueWindowMs: opts.uniqueWindowMs ?? null,
      payloadSizeChecked: true,
      // A full queue that blocks answers null, and the client waits for room.
      waitWhenFull: true,
    },
  };
}
