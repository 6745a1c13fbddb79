// Serializes a value for a jsonb column, refusing what JSON or jsonb would
// silently drop or alter: circular structures, BigInt, functions, symbols,
// undefined (at the top or in an array), NaN and ±Infinity (JSON null), an
// invalid Date (JSON null), a Map or a Set (JSON {}), other built-ins that
// keep their contents where JSON does not look (an Error, a RegExp, binary
// data, a Promise, an iterator: JSON {} or an object keyed by index), NUL
// characters and lone UTF-16 surrogates (jsonb refuses them). What a toJSON()
// returns is what gets stored, so it is held to the same rules: a Buffer (its
// toJSON() gives { type: 'Buffer', data: [...] }), a URL or a class with a
// toJSON() is stored as that gives it.
//
// The common case pays for JSON.stringify (native) plus one walk that
// allocates nothing; paths are built only once that walk or the text hints at
// a problem. A JSON.stringify replacer would find the same things at about
// twice the serialization cost (packages/bench/src/json-check.ts).
import { types } from 'node:util';
import { pathKey } from './log-safety.js';

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
  if (text === undefined || lossy(value, '') || text.includes('\\u')) {
    const fault = jsonFault(value, '', []);
    if (fault) return fault;
  }
  return text!;
}

/** True when the value may hold something JSON drops or turns into null; cheap, no paths. `key`: what JSON passes to its toJSON(). */
function lossy(v: unknown, key: string | number): boolean {
  if (typeof v !== 'object' || v === null) return lossyPrimitive(v);
  if (Array.isArray(v)) return lossyArray(v);
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return lossyToJSON(v, toJSON, key);
  return lossyObject(v);
}

function lossyPrimitive(v: unknown): boolean {
  return typeof v === 'number' ? !Number.isFinite(v) : typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint';
}

function lossyArray(v: unknown[]): boolean {
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (x === undefined || lossy(x, i)) return true;
  }
  return false;
}

function lossyObject(v: object): boolean {
  // JSON writes a Map or a Set as {} and unwraps a boxed number (NaN too):
  // anything but a plain object goes to the walk, which knows each of them.
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return true;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined && lossy(x, k)) return true;
  }
  return false;
}

// Kept out of lossy() itself: V8 then keeps the walk of plain data as fast as it was without it.
function lossyToJSON(v: object, toJSON: Function, key: string | number): boolean {
  // A valid Date, the common toJSON(), is known without calling it.
  if (toJSON === dateToJSON && v instanceof Date && v.toISOString === dateToISOString && !Number.isNaN(dateGetTime.call(v))) return false;
  // JSON stores what toJSON() returns, and calls no toJSON() of that value itself.
  let out: unknown;
  try {
    out = toJSON.call(v, String(key));
  } catch {
    return true;
  }
  if (typeof out !== 'object') return out === undefined || lossyPrimitive(out);
  if (out === null) return types.isDate(v);
  return Array.isArray(out) ? lossyArray(out) : lossyObject(out);
}

// Taken once, so a Date whose toJSON or toISOString was replaced is told apart.
const dateToJSON = Date.prototype.toJSON;
const dateToISOString = Date.prototype.toISOString;
const dateGetTime = Date.prototype.getTime;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Every character jsonb refuses in a string. */
export const UNSTORABLE_CHARS = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A character jsonb refuses, written as its \\u escape (for paths and messages). */
export const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Strings jsonb refuses: a NUL character, or a lone UTF-16 surrogate. */
export function unstorable(text: string): boolean {
  return text.includes('\u0000') || LONE_SURROGATE.test(text);
}

const join = (path: string, key: string | number) => (path ? `${path}.${pathKey(key)}` : pathKey(key));

/** The first thing in `value` JSON cannot carry faithfully, with its path; null when there is none. */
export function jsonFault(value: unknown, path: string, ancestors: object[]): JsonFault | null {
  if ((typeof value === 'object' && value !== null) || typeof value === 'bigint') {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const holder = Object(value) as object;
      if (ancestors.includes(holder)) return { path, reason: 'is a circular reference, which JSON cannot hold' };
      let out: unknown;
      try {
        out = toJSON.call(value, path.slice(path.lastIndexOf('.') + 1));
      } catch {
        return { path, reason: 'has a toJSON() that throws' };
      }
      if (out === null && types.isDate(value)) return { path, reason: 'is an invalid Date, which JSON would store as null' };
      // JSON stores the result without calling its own toJSON(). The holder
      // stays an ancestor, so a result that leads back to it is caught as a
      // cycle; a toJSON() returning `this` is not one (JSON writes its fields).
      const self = out === holder;
      if (!self) ancestors.push(holder);
      try {
        const fault = ownFault(out, path, ancestors);
        return fault && fault.path === path ? { path, reason: `has a toJSON() whose result ${fault.reason}` } : fault;
      } finally {
        if (!self) ancestors.pop();
      }
    }
  }
  return ownFault(value, path, ancestors);
}

/** jsonFault for a value whose toJSON(), if any, JSON does not call. */
function ownFault(value: unknown, path: string, ancestors: object[]): JsonFault | null {
  let v = value;
  // JSON writes a boxed number, string or boolean as its primitive value.
  if (typeof v === 'object' && v !== null && types.isBoxedPrimitive(v)) {
    if (types.isNumberObject(v)) v = Number(v);
    else if (types.isStringObject(v)) v = String(v);
    else if (types.isBigIntObject(v)) v = v.valueOf();
    else if (types.isSymbolObject(v)) v = v.valueOf();
    else return null;
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
  // Reached only where JSON does not call the Date's toJSON(): a toJSON() returned it, or it lost its own.
  if (types.isDate(v)) return { path, reason: 'is a Date, which JSON would store as {} here (give its ISO text)' };
  if (types.isMap(v) || types.isWeakMap(v)) return { path, reason: 'is a Map, which JSON would store as {} (send an object or an array of entries)' };
  if (types.isSet(v) || types.isWeakSet(v)) return { path, reason: 'is a Set, which JSON would store as {} (send an array)' };
  const builtIn = builtInReason(v);
  if (builtIn) return { path, reason: builtIn };
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
      // Such a key is no identifier: the path shows it as `*` (pathKey), never its characters.
      if (unstorable(k)) return { path: at, reason: `its key ${NOT_STORABLE}` };
      // A property set to undefined is left out, as in JSON: reading it back gives undefined too.
      if (x === undefined) continue;
      // Only in a toJSON() result (one that spreads or returns its holder): a serialization hook, not data.
      if (k === 'toJSON' && typeof x === 'function') continue;
      const found = jsonFault(x, at, ancestors);
      if (found) return found;
    }
    return null;
  } finally {
    ancestors.pop();
  }
}

// The name a typed array was made with, read from the engine rather than from a property the value could override.
const typedArrayName = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, Symbol.toStringTag)!.get!;
// The iterators of arrays, strings and matchAll(), which util.types does not tell apart.
const ITERATOR_PROTOTYPES = new Set<unknown>([[].values(), ''[Symbol.iterator](), ''.matchAll(/./g)].map((i) => Object.getPrototypeOf(i)));

/**
 * Why JSON cannot carry a built-in object whose contents live in internal
 * slots, not in properties: JSON writes {} (or, for a typed array, an object
 * keyed by index, which reads back as no array at all). Null for anything else.
 */
function builtInReason(v: object): string | null {
  if (types.isNativeError(v)) return 'is an Error, which JSON would store without its message (send its message, or an object of the fields you need)';
  if (types.isRegExp(v)) return 'is a RegExp, which JSON would store as {} (send its source text)';
  if (types.isAnyArrayBuffer(v)) {
    const name = types.isSharedArrayBuffer(v) ? 'a SharedArrayBuffer' : 'an ArrayBuffer';
    return `is ${name}, which JSON would store as {} (send the bytes as base64 text or an array of numbers)`;
  }
  if (types.isTypedArray(v)) {
    return `is a ${String(typedArrayName.call(v))}, which JSON would store as an object keyed by index (send an array of numbers, or bytes as base64 text)`;
  }
  if (types.isDataView(v)) return 'is a DataView, which JSON would store as {} (send the bytes as base64 text or an array of numbers)';
  if (types.isPromise(v)) return 'is a Promise, which JSON would store as {} (await it first)';
  if (v instanceof WeakRef || v instanceof FinalizationRegistry) return `is a ${v instanceof WeakRef ? 'WeakRef' : 'FinalizationRegistry'}, which JSON would store as {}`;
  if (types.isGeneratorObject(v) || types.isMapIterator(v) || types.isSetIterator(v) || ITERATOR_PROTOTYPES.has(Object.getPrototypeOf(v))) {
    return 'is an iterator, which JSON would store as {} (send an array)';
  }
  return null;
}
