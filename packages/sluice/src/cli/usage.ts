// CLI argument errors and exit codes.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT_OK = 0;
/** The command ran and failed (database unreachable, schema too new, ...). */
export const EXIT_FAILURE = 1;
/** Bad arguments: nothing was done. */
export const EXIT_USAGE = 2;
/** The database has no sluice schema or an older one: run `sluice migrate`. (3 is doctor's.) */
export const EXIT_NOT_MIGRATED = 4;

export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    readonly argument: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${argument}: ${reason}`, options);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with strict checking, turning its errors into UsageError naming the argument. */
export interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export function parse(args: string[], options: Options): Parsed {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message;
    const arg = message.match(/'(-[^' ]+)/)?.[1] ?? 'arguments';
    throw new UsageError(arg, message);
  }
}

export function databaseUrl(value: string | undefined): string {
  const url = value ?? process.env.DATABASE_URL;
  if (!url) throw new UsageError('--database-url', 'give --database-url or set DATABASE_URL');
  return url;
}

/** A read replica for commands that only read: --read-database-url or SLUICE_READ_DATABASE_URL; none by default. */
export function readDatabaseUrl(value: string | undefined): string | undefined {
  return value ?? (process.env.SLUICE_READ_DATABASE_URL || undefined);
}
