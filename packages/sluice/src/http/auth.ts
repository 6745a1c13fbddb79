// Bearer-token check. Both sides are hashed before the constant-time
// compare, so neither the token's content nor its length leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { problem } from './problem.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function tokensMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function requireBearer(token: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer ([^\s]+)$/i.exec(header);
    if (!match || !tokensMatch(match[1]!, token)) {
      c.header('WWW-Authenticate', 'Bearer realm="sluice"');
      return problem(c, 401, 'unauthorized', 'a valid bearer token is required');
    }
    await next();
  };
}
