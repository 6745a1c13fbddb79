// Bearer-token check. Both sides are hashed before the constant-time
// compare, so neither the token's content nor its length leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { problem } from './problem.js';
import { clientAddress, retryAfterSeconds, type SignInThrottle } from './sign-in-throttle.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function tokensMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Admits a request with the right bearer token. A wrong one counts as a
 * failed sign-in of the client's address (see SignInThrottle); a locked-out
 * address gets 429 and Retry-After without its token being checked. A
 * request with no token at all guesses nothing and is not counted.
 */
export function requireBearer(token: string, throttle: SignInThrottle, trustProxy: boolean): MiddlewareHandler {
  return async (c, next) => {
    const address = clientAddress(c, trustProxy);
    const waitMs = throttle.retryAfterMs(address);
    if (waitMs > 0) {
      c.header('Retry-After', retryAfterSeconds(waitMs));
      return problem(c, 429, 'too_many_failures', 'too many failed sign-ins: try again later');
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer ([^\s]+)$/i.exec(header);
    if (!match || !tokensMatch(match[1]!, token)) {
      const lockoutMs = match ? throttle.failed(address) : 0;
      if (lockoutMs > 0) c.header('Retry-After', retryAfterSeconds(lockoutMs));
      c.header('WWW-Authenticate', 'Bearer realm="sluice"');
      return problem(c, 401, 'unauthorized', 'a valid bearer token is required');
    }
    throttle.succeeded(address);
    await next();
  };
}
