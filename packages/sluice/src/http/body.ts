// Reads a request's JSON body, refusing what could not be stored or would
// overflow a recursive walk, each with a ValidationError naming where.
import { ValidationError } from '../errors.js';
import { jsonFault } from '../json-text.js';

/** Deepest nesting of arrays and objects accepted in a request body. */
export const HTTP_MAX_JSON_DEPTH = 256;

/** Walks without recursion: a body nested a million deep must not overflow the stack. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The body as a JSON object. The parser's message quotes the text it choked on, so it is replaced, never passed on. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ValidationError('body', 'must be valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('body', 'must be a JSON object');
  if (nestedDeeperThan(body, HTTP_MAX_JSON_DEPTH)) throw new ValidationError('body', `must not nest arrays and objects deeper than ${HTTP_MAX_JSON_DEPTH} levels`);
  // A NUL or a lone surrogate parses as JSON but PostgreSQL refuses it in
  // text and jsonb alike: refused here, wherever in the body it sits.
  const fault = jsonFault(body, '', []);
  if (fault) throw new ValidationError(`body.${fault.path}`, fault.reason);
  return body as Record<string, unknown>;
}
