import { pino, type Logger } from 'pino';
import { ValidationError } from './errors.js';
import { safeError } from './log-safety.js';

/** Every logger sluice writes through serialises `err` with this: no row, SQL or payload text. */
export const SAFE_SERIALIZERS = { err: safeError };

/** The logger used when none is passed in. Payloads are never logged by sluice. */
export function defaultLogger(): Logger {
  return pino({ name: 'sluice', level: process.env.SLUICE_LOG_LEVEL ?? 'info', serializers: SAFE_SERIALIZERS });
}

/**
 * The logger sluice writes through: the one given (as a child that
 * sanitises errors, whatever serialisers its owner set) or the default.
 */
export function sluiceLogger(logger?: Logger): Logger {
  if (logger === undefined) return defaultLogger();
  // Anything else would fail later, at the first line logged, as a TypeError.
  if (typeof (logger as { child?: unknown } | null)?.child !== 'function') throw new ValidationError('logger', 'expected a pino logger');
  return logger.child({}, { serializers: SAFE_SERIALIZERS });
}
