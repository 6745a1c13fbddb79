// Sign-in and CSRF. Credentials are compared in constant time (both sides
// hashed first, so neither content nor length leaks through timing). A
// session is a signed cookie: expiry, a random nonce and an HMAC over them
// and a fingerprint of the credential, so changing the token or password
// signs everybody out. The nonce's hash is also the id of the session's row
// in the database, which signing out deletes. The CSRF token of a form is an HMAC of the session's
// nonce: a page from another origin can neither read nor forge it.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthMode } from './options.js';

export const SESSION_COOKIE = 'sluice_dash';
/** For modes without a session (authorize, insecure-local): a random value the CSRF token is bound to. */
export const CSRF_COOKIE = 'sluice_dash_csrf';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time equality of two strings of any length. */
export function secretsMatch(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** Checks what the sign-in form sent. Every field is compared, whichever fails first. */
export function credentialsMatch(auth: AuthMode, form: { token?: string; user?: string; password?: string }): boolean {
  if (auth.kind === 'token') return secretsMatch(form.token ?? '', auth.token);
  if (auth.kind === 'password') {
    const userOk = secretsMatch(form.user ?? '', auth.user);
    const passwordOk = secretsMatch(form.password ?? '', auth.password);
    return userOk && passwordOk;
  }
  return false;
}

function fingerprint(auth: AuthMode): string {
  if (auth.kind === 'token') return digest(`token:${auth.token}`).toString('base64url');
  if (auth.kind === 'password') return digest(`password:${auth.user}:${auth.password}`).toString('base64url');
  return auth.kind;
}

export class Signer {
  private readonly credential: string;

  constructor(
    private readonly secret: Buffer,
    auth: AuthMode,
  ) {
    this.credential = fingerprint(auth);
  }

  private mac(text: string): string {
    return createHmac('sha256', this.secret).update(text, 'utf8').digest('base64url');
  }

  /** A new session valid for ttlMs: its cookie value, its nonce and when it expires. */
  issueSession(ttlMs: number, now = Date.now()): { cookie: string; nonce: string; expiresAt: Date } {
    const expires = now + ttlMs;
    const nonce = randomBytes(18).toString('base64url');
    return { cookie: `${expires}.${nonce}.${this.mac(`session.${expires}.${nonce}.${this.credential}`)}`, nonce, expiresAt: new Date(expires) };
  }

  /** The session's nonce when the cookie is genuine and unexpired, else null. */
  verifySession(value: string | undefined, now = Date.now()): string | null {
    if (!value) return null;
    const m = /^(\d{13,15})\.([A-Za-z0-9_-]{24})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return null;
    const [, expires, nonce, mac] = m;
    if (!secretsMatch(mac!, this.mac(`session.${expires}.${nonce}.${this.credential}`))) return null;
    if (Number(expires) <= now) return null;
    return nonce!;
  }

  csrfToken(seed: string): string {
    return this.mac(`csrf.${seed}`);
  }

  csrfValid(seed: string, given: unknown): boolean {
    return typeof given === 'string' && given.length > 0 && secretsMatch(given, this.csrfToken(seed));
  }
}

/** The id a session's row has: a hash of its nonce, so the table holds nothing a cookie can be made from. */
export function sessionId(nonce: string): string {
  return digest(`session:${nonce}`).toString('base64url');
}

/** A fresh random value for the CSRF cookie of session-less modes. */
export function newCsrfSeed(): string {
  return randomBytes(18).toString('base64url');
}

export const CSRF_SEED_PATTERN = /^[A-Za-z0-9_-]{24}$/;
