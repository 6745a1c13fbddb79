// Sign-in and sign-out for the token and user/password modes, and the
// middleware that admits a request: a valid session cookie whose session row
// still exists, the host app's authorize() answer, or (insecure-local) a
// loopback Host header. Failed sign-ins go through the SignInThrottle.
import type { Hono, MiddlewareHandler } from 'hono';
import { clientAddress, retryAfterSeconds } from 'sluice/http';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { CSRF_COOKIE, CSRF_SEED_PATTERN, SESSION_COOKIE, credentialsMatch, newCsrfSeed, sessionId } from '../auth.js';
import type { DashEnv, Deps } from '../context.js';
import { DashboardRequestError, PG_INSUFFICIENT_PRIVILEGE } from '../errors.js';
import { loopbackHost, overHttps, sameOrigin } from '../security.js';
import { sessionCreate, sessionDelete, sessionExists } from '../sql/sessions.js';
import { loginPage, messagePage } from '../views/login.js';

/** A failed sign-in answers after this long, so guessing online is slow. */
const FAILED_LOGIN_DELAY_MS = 300;

function cookiePath(deps: Deps): string {
  return deps.opts.basePath || '/';
}

/** Where to go after sign-in: only a path inside the dashboard. */
function safeNext(deps: Deps, next: unknown): string {
  const base = deps.opts.basePath;
  if (typeof next === 'string' && next.startsWith(`${base}/`) && !next.startsWith('//') && !next.includes('\\') && /^[\x21-\x7e]{1,2000}$/.test(next)) {
    return next;
  }
  return `${base}/`;
}

export function sessionRoutes(app: Hono<DashEnv>, deps: Deps): void {
  const { opts, signer } = deps;
  const mode = opts.auth.kind;
  if (mode !== 'token' && mode !== 'password') return;

  app.get('/login', (c) => c.html(loginPage({ base: opts.basePath, mode, next: safeNext(deps, c.req.query('next')), error: null })));

  app.post('/login', async (c) => {
    if (!sameOrigin(c)) return c.html(loginPage({ base: opts.basePath, mode, next: `${opts.basePath}/`, error: 'Sign-in refused: the form came from another site.' }), 403);
    const form = await c.req.parseBody();
    const field = (k: string) => (typeof form[k] === 'string' ? (form[k] as string) : undefined);
    const next = safeNext(deps, field('next'));
    // A locked-out address is answered without its credential being checked.
    const address = clientAddress(c, opts.trustProxy);
    const waitMs = deps.throttle.retryAfterMs(address);
    if (waitMs > 0) {
      const seconds = retryAfterSeconds(waitMs);
      c.header('Retry-After', seconds);
      deps.logger.warn({ mode, retryAfterS: Number(seconds) }, 'dashboard sign-in refused: too many failures');
      return c.html(loginPage({ base: opts.basePath, mode, next, error: `Too many failed sign-ins: try again in ${seconds} s.` }), 429);
    }
    if (!credentialsMatch(opts.auth, { token: field('token'), user: field('user'), password: field('password') })) {
      const lockoutMs = deps.throttle.failed(address);
      if (lockoutMs > 0) c.header('Retry-After', retryAfterSeconds(lockoutMs));
      await new Promise((r) => setTimeout(r, FAILED_LOGIN_DELAY_MS));
      deps.logger.warn({ mode }, 'dashboard sign-in refused');
      const error = mode === 'token' ? 'Wrong access token.' : 'Wrong user or password.';
      return c.html(loginPage({ base: opts.basePath, mode, next, error }), 401);
    }
    deps.throttle.succeeded(address);
    const session = signer.issueSession(opts.sessionTtlMs);
    try {
      await sessionCreate(opts.sluice.pool, { id: sessionId(session.nonce), expiresAt: session.expiresAt });
    } catch (err) {
      if ((err as { code?: string }).code !== PG_INSUFFICIENT_PRIVILEGE) throw err;
      throw new DashboardRequestError(403, 'sign-in needs INSERT and DELETE on sluice.dashboard_sessions for the database role: run `sluice roles` again', { cause: err });
    }
    setCookie(c, SESSION_COOKIE, session.cookie, {
      path: cookiePath(deps),
      httpOnly: true,
      sameSite: 'Strict',
      secure: overHttps(c),
      maxAge: Math.floor(opts.sessionTtlMs / 1000),
    });
    return c.redirect(next, 303);
  });
}

/** Admits the request or answers it: sign-in redirect (GET), 401 (other), 403 (bad Host). */
export function admit(deps: Deps): MiddlewareHandler<DashEnv> {
  const { opts, signer } = deps;
  return async (c, next) => {
    const auth = opts.auth;
    if (auth.kind === 'token' || auth.kind === 'password') {
      const nonce = signer.verifySession(getCookie(c, SESSION_COOKIE));
      if (!nonce || !(await sessionExists(opts.sluice.pool, sessionId(nonce)))) {
        if (c.req.method === 'GET' && !c.req.header('x-sluice-live')) {
          const url = new URL(c.req.url);
          return c.redirect(`${opts.basePath}/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
        }
        return c.html(messagePage({ base: opts.basePath, title: 'Signed out', text: 'Sign in again to go on.' }), 401);
      }
      c.set('viewer', { csrfSeed: nonce, session: sessionId(nonce), canSignOut: true });
      return next();
    }
    if (auth.kind === 'insecure-local' && !loopbackHost(c)) {
      return c.html(messagePage({ base: opts.basePath, title: 'Refused', text: 'This dashboard runs without sign-in and answers only on 127.0.0.1 / localhost.' }), 403);
    }
    if (auth.kind === 'authorize') {
      let ok = false;
      try {
        ok = (await auth.authorize(c.req.raw)) === true;
      } catch (err) {
        deps.logger.error({ errName: (err as Error)?.name }, 'dashboard authorize() threw; request refused');
      }
      if (!ok) return c.html(messagePage({ base: opts.basePath, title: 'Not allowed', text: 'You are not allowed to see this dashboard.' }), 403);
    }
    // Session-less modes bind CSRF tokens to a random cookie of their own.
    let seed = getCookie(c, CSRF_COOKIE);
    if (!seed || !CSRF_SEED_PATTERN.test(seed)) {
      seed = newCsrfSeed();
      setCookie(c, CSRF_COOKIE, seed, { path: cookiePath(deps), httpOnly: true, sameSite: 'Strict', secure: overHttps(c) });
    }
    c.set('viewer', { csrfSeed: seed, session: null, canSignOut: false });
    return next();
  };
}

export function logoutRoute(app: Hono<DashEnv>, deps: Deps): void {
  app.post('/logout', async (c) => {
    const session = c.get('viewer').session;
    if (session) await sessionDelete(deps.opts.sluice.pool, session);
    deleteCookie(c, SESSION_COOKIE, { path: cookiePath(deps) });
    return c.redirect(`${deps.opts.basePath}/login`, 303);
  });
}
