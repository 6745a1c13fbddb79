// Which schemas sluice accepts, and how it runs one. A schema is recognised
// by the version zod 4 stamps on it, not by `instanceof`: an application may
// load its own copy of zod 4 (or zod/mini), and its schemas are as good as
// sluice's. zod 3 schemas carry no stamp and are refused by name.
import type { z } from 'zod';
import { UnsupportedSchemaError } from './errors.js';
import { pathKey } from './log-safety.js';

/** Any zod 4 schema: classic (`zod`) or mini (`zod/mini`). */
export type Schema = z.core.$ZodType;

type SafeParse = (value: unknown) => { success: true; data: unknown } | { success: false; error: { issues: readonly z.core.$ZodIssue[] } };

/** Throws UnsupportedSchemaError unless `schema` is a zod 4 schema. */
export function checkSchemaLibrary(jobName: string, schema: unknown, field: 'schema' | 'result' = 'schema'): void {
  const s = schema as { _zod?: { version?: { major?: unknown } }; _def?: unknown; safeParse?: unknown } | null;
  if (typeof s === 'object' && s !== null && s._zod?.version?.major === 4 && typeof s.safeParse === 'function') return;
  const fromZod3 = typeof s === 'object' && s !== null && s._zod === undefined && s._def !== undefined && typeof s.safeParse === 'function';
  throw new UnsupportedSchemaError(jobName, field, fromZod3 ? 'a schema from zod 3' : 'no zod schema');
}

/** Runs the schema's own safeParse, so a schema from another copy of zod 4 is parsed by that copy. */
export function safeParse<S extends Schema>(
  schema: S,
  value: unknown,
): { success: true; data: z.output<S> } | { success: false; issues: { path: string; message: string }[] } {
  const result = (schema as unknown as { safeParse: SafeParse }).safeParse(value);
  if (result.success) return { success: true, data: result.data as z.output<S> };
  return { success: false, issues: result.error.issues.map((i) => ({ path: i.path.map(pathKey).join('.'), message: issueMessage(i) })) };
}

/** zod names unrecognized keys in its message: those that are data show as * (pathKey). */
function issueMessage(issue: { code?: string; message: string; keys?: readonly PropertyKey[] }): string {
  if (issue.code !== 'unrecognized_keys' || !issue.keys) return issue.message;
  return `Unrecognized key${issue.keys.length === 1 ? '' : 's'}: ${issue.keys.map(pathKey).join(', ')}`;
}
