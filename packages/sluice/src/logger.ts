import { pino, type Logger } from 'pino';

/** The logger used when none is passed in. Payloads are never logged by sluice. */
export function defaultLogger(): Logger {
  return pino({ name: 'sluice', level: process.env.SLUICE_LOG_LEVEL ?? 'info' });
}
