// The options object of a client call (getJob, cancel, waitFor, publish,
// queues.configure, ...), checked as enqueue checks its own: a key the call
// does not take is a typo whose intent would be silently lost.
import { z } from 'zod';
import { parseOptions } from './config.js';
import { ValidationError } from './errors.js';

/** The options of a call that takes only the caller's transaction. */
export const txOptionsSchema = z.strictObject({ tx: z.any().optional() });

/** `options` checked by its strict schema: undefined is {}; anything else not an object, or with a key the call does not take, is a ValidationError naming `options`. */
export function callOptions<T>(schema: z.ZodType<T>, options: unknown): T {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new ValidationError('options', 'must be an object');
  }
  return parseOptions(schema, options, 'options');
}
