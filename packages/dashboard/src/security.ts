// Response headers and request checks that hold for every page.
//
// The Content-Security-Policy allows scripts, styles and fetches from the
// dashboard's own origin only, and no inline script or style: a value that
// slipped past escaping still could not run. Frames are refused
// (clickjacking). Referrers go to this origin only, so job ids in URLs stay
// here; "no-referrer" would also blank the Origin header of the dashboard's
// own form posts, which the origin check reads.
import type { Context, MiddlewareHandler } from 'hono';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.res.headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.res.headers.set('X-Content-Type-Options', 'nosniff');
    c.res.headers.set('X-Frame-Options', 'DENY');
    c.res.headers.set('Referrer-Policy', 'same-origin');
    c.res.headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    c.res.headers.set('Cross-Origin-Resource-Policy', 'same-origin');
    if (!c.res.headers.has('Cache-Control')) c.res.headers.set('Cache-Control', 'no-store');
  };
}

/**
 * A POST must not come from another site. Browsers send Origin (and
 * Sec-Fetch-Site) on form posts; when present they must name this host. The
 * CSRF token is the main defence; this check is a second one that also
 * covers the sign-in form, which has no session yet.
 */
export function sameOrigin(c: Context): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = c.req.header('origin');
  if (!origin) return true;
  if (origin === 'null') return false;
  const host = c.req.header('x-forwarded-host') ?? c.req.header('host');
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Without sign-in (insecure-local) the server listens on loopback only, but a
 * web page could still reach it through a name that resolves to 127.0.0.1
 * (DNS rebinding) and read it as its own origin. Only loopback host names pass.
 */
export function loopbackHost(c: Context): boolean {
  const host = c.req.header('host') ?? '';
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

/** Whether cookies must be Secure: the request came over HTTPS (directly or through a proxy). */
export function overHttps(c: Context): boolean {
  // Proxies write it in any case, and a chain of them lists every hop: the
  // first is the one the browser reached. Taking https wrongly only marks a
  // cookie Secure, which costs the one client that sent the header.
  const forwarded = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  return new URL(c.req.url).protocol === 'https:' || forwarded === 'https';
}
