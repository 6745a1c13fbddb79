// A pino logger whose lines land in an array, parsed, for asserting on logs.
import { pino, type Logger } from 'pino';

export function captureLogs(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[]; raw: string[] } {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = pino({ level }, {
    write(chunk: string) {
      raw.push(chunk);
      lines.push(JSON.parse(chunk));
    },
  });
  return { logger, lines, raw };
}
