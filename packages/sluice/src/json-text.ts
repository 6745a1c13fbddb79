// Serializes a value for a jsonb column, refusing what JSON or jsonb would
// silently drop or alter: circular structures, BigInt, functions, symbols,
// undefined (at the top or in an array), NaN and ±Infinity (JSON null), NUL
// characters and lone UTF-16 surrogates (jsonb refuses them).
//
// The common case pays for JSON.stringify (native) plus one walk that
// allocates nothing; paths are built only once that walk or the text hints at
// a problem. A JSON.stringify replacer would find the same things at about
// twice the serialization cost (packages/bench/src/json-check.ts).

/** Where a value cannot be stored faithfully, and why. The path names the field, never its value. */
export interface JsonFault {
  path: string;
  reason: string;
}

const UNSERIALIZABLE: JsonFault = { path: '', reason: 'cannot be serialized as JSON' };
const NOT_STORABLE = 'contains a NUL character or an unpaired surrogate, which PostgreSQL cannot store';

/** The JSON text of `value`, or where and why it cannot be stored as it is. */
export function jsonText(value: unknown): string | JsonFault {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A getter or toJSON that throws may throw again on the walk.
    try {
      return jsonFault(value, '', []) ?? UNSERIALIZABLE;
    } catch {
      return UNSERIALIZABLE;
    }
  }
  // JSON.stringify writes a NUL as \u0000 and a lone surrogate as \udXXX, so
  // text without any \u escape holds neither.
  if (text === undefined || lossy(value) || text.includes('\\u')) {
    const fault = jsonFault(value, '', []);
    if (fault) return fault;
  }
  return text!;
}

/** True when the value may hold something JSON drops or turns into null; cheap, no paths. */
function lossy(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) {
    return typeof v === 'number' ? !Number.isFinite(v) : typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint';
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x === undefined || lossy(x)) return true;
    }
    return false;
  }
  // An object with toJSON (a Date) is stored as toJSON says.
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined && lossy(x)) return true;
  }
  return false;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Every character jsonb refuses in a string. */
export const UNSTORABLE_CHARS = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A character jsonb refuses, written as its \\u escape (for paths and messages). */
export const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Strings jsonb refuses: a NUL character, or a lone UTF-16 surrogate. */
export function unstorable(text: string): boolean {
  return text.includes('\u0000') || LONE_SURROGATE.test(text);
}

const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key));

/** The first thing in `value` JSON cannot carry faithfully, with its path; null when there is none. */
export function jsonFault(value: unknown, path: string, ancestors: object[]): JsonFault | null {
  let v = value;
  if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      if (ancestors.includes(v as object)) return { path, reason: 'is a circular reference, which JSON cannot hold' };
      try {
        v = toJSON.call(v, path.slice(path.lastIndexOf('.') + 1));
      } catch {
        return { path, reason: 'has a toJSON() that throws' };
      }
      if (typeof v === 'object' && v !== null) return null;
    }
  }
  switch (typeof v) {
    case 'undefined':
      return { path, reason: 'is undefined, which JSON cannot hold (use null)' };
    case 'bigint':
      return { path, reason: 'is a BigInt, which JSON cannot hold (send it as a string or a number)' };
    case 'function':
      return { path, reason: 'is a function, which JSON cannot hold' };
    case 'symbol':
      return { path, reason: 'is a symbol, which JSON cannot hold' };
    case 'number':
      return Number.isFinite(v) ? null : { path, reason: 'is NaN or Infinity, which JSON would store as null' };
    case 'string':
      return unstorable(v) ? { path, reason: NOT_STORABLE } : null;
    case 'object':
      break;
    default:
      return null;
  }
  if (v === null) return null;
  if (ancestors.includes(v)) return { path, reason: 'is a circular reference, which JSON cannot hold' };
  ancestors.push(v);
  try {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (x === undefined) return { path: join(path, i), reason: 'is undefined in an array, which JSON would store as null' };
        const found = jsonFault(x, join(path, i), ancestors);
        if (found) return found;
      }
      return null;
    }
    for (const [k, x] of Object.entries(v)) {
      const at = join(path, k);
      // The path must be storable itself (errors land in logs and jsonb): the key's bad characters are shown escaped.
      if (unstorable(k)) return { path: join(path, k.replace(UNSTORABLE_CHARS, escapeChar)), reason: `its key ${NOT_STORABLE}` };
      // A property set to undefined is left out, as in JSON: reading it back gives undefined too.
      if (x === undefined) continue;
      const found = jsonFault(x, at, ancestors);
      if (found) return found;
    }
    return null;
  } finally {
    ancestors.pop();
  }
}
