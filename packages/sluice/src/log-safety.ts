// What an error may carry into a log line or a job's error history.
// PostgreSQL's `detail` quotes the failing row of a CHECK or NOT NULL
// violation (payload included) and the key of a unique violation; `where`
// and `internalQuery` quote SQL with its values. Those never leave the
// process: an error is reduced to what names things (code, constraint,
// table, column, schema), never to what it holds.

/**
 * A payload's key as an error path shows it. The keys a schema names are
 * identifiers; keys that are data (a record keyed by e-mail address or user
 * id) would carry the payload into messages, logs and HTTP answers, and show
 * as `*`. Array indexes show as they are.
 */
export function pathKey(key: PropertyKey): string {
  if (typeof key === 'number') return String(key);
  const k = String(key);
  return /^[A-Za-z_$][\w$-]{0,63}$/.test(k) ? k : '*';
}

/** Fields of a PostgreSQL error that name things and never hold values. */
const PG_NAMING_FIELDS = ['code', 'severity', 'schema', 'table', 'column', 'dataType', 'constraint', 'routine'] as const;

/** Fields, on any error, that can hold rows, SQL, parameters or request data. */
const VALUE_FIELDS = new Set([
  'detail',
  'where',
  'internalQuery',
  'internalPosition',
  'position',
  'hint',
  'query',
  'parameters',
  'values',
  'payload',
  'result',
  'data',
  'body',
  'input',
  'row',
]);

const MAX_CAUSE_DEPTH = 5;

interface PgErrorLike {
  code: string;
  severity: string;
  message: string;
}

function isPgError(err: object): err is PgErrorLike {
  const e = err as Partial<PgErrorLike>;
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/**
 * A data exception's message can quote the input it refused
 * (`invalid input syntax for type integer: "..."`): quoted text goes.
 * sluice's own messages (raised by its functions) never quote values.
 */
export function safeMessage(err: unknown): string {
  const message = safeString((err as { message?: unknown } | null | undefined)?.message ?? err);
  if (typeof err !== 'object' || err === null || !isPgError(err)) return message;
  if (!err.code.startsWith('22') || message.startsWith('sluice')) return message;
  return message.replace(/"(?:[^"]|"")*"/g, '"[redacted]"');
}

/**
 * Any thrown value as text. String() throws for a value without a usable
 * conversion (an object made with Object.create(null), a toString that
 * throws, a Symbol inside a template): the value's tag stands in.
 */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The stack, its first line carrying the safe message. */
export function safeStack(err: Error, message: string): string | undefined {
  if (!err.stack) return undefined;
  return message === err.message ? err.stack : err.stack.replace(err.message, message);
}

/**
 * The error as a plain object fit for a log line: type, message, stack, the
 * naming fields of a PostgreSQL error, the other fields of any other error
 * except value-bearing ones, and its cause, sanitised the same way.
 */
export function safeError(err: unknown, depth = 0): unknown {
  if (typeof err !== 'object' || err === null) return err;
  const out: Record<string, unknown> = {};
  if (err instanceof Error) {
    const message = safeMessage(err);
    out.type = err.name;
    out.message = message;
    const stack = safeStack(err, message);
    if (stack !== undefined) out.stack = stack;
  }
  if (isPgError(err)) {
    for (const field of PG_NAMING_FIELDS) {
      const value = (err as unknown as Record<string, unknown>)[field];
      if (value !== undefined) out[field] = value;
    }
  } else {
    for (const [key, value] of Object.entries(err)) {
      if (VALUE_FIELDS.has(key) || key in out || key === 'cause') continue;
      out[key] = value instanceof Error ? safeError(value, depth + 1) : value;
    }
  }
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && depth < MAX_CAUSE_DEPTH) out.cause = safeError(cause, depth + 1);
  return out;
}
