// Slows down guessing a token or password. Each client address may fail a
// few times; after that it is locked out, for longer after each further
// failure, and answered 429 without its credential being checked. Across all
// addresses, too many failures in a minute lock sign-in for every address
// that has not signed in successfully lately, so spreading guesses over many
// addresses does not help either. A correct credential from another address
// is never refused because one address is locked out.
//
// The counts live in this process: each instance behind a load balancer
// keeps its own, which multiplies the budget by the number of instances but
// keeps sign-in free of database writes.
import type { Context } from 'hono';
import { monotonicMs } from '../clock.js';

/** Failed sign-ins one address may make before its first lockout. */
export const SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT = 5;
/** Failed sign-ins from all addresses in one minute before sign-in locks for unknown addresses. */
export const SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT = 100;
/** The first lockout of an address; each further failure doubles it. */
export const SIGN_IN_LOCKOUT_MS_MIN = 2_000;
/** The longest lockout of an address. */
export const SIGN_IN_LOCKOUT_MS_MAX = 15 * 60_000;
/** An address's failures are forgotten this long after its last one. */
const FAILURES_FORGOTTEN_AFTER_MS = 60 * 60_000;
/** An address that signed in within this long passes a global lockout. */
const SUCCESS_REMEMBERED_MS = 24 * 60 * 60_000;
const GLOBAL_WINDOW_MS = 60_000;
/** Addresses remembered at most (the stalest go first): a flood of addresses cannot exhaust memory. */
const MAX_ADDRESSES = 10_000;

export interface SignInThrottleOptions {
  /** Failed sign-ins one address may make before it is locked out. Default 5. */
  maxFailedSignInsPerAddress?: number;
  /** Failed sign-ins from all addresses per minute before sign-in locks for addresses with no recent success. Default 100. */
  maxFailedSignInsPerMinute?: number;
}

interface AddressState {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
}

/** Sets key to value as the most recent entry, dropping the stalest past the cap. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_ADDRESSES) map.delete(map.keys().next().value!);
}

export class SignInThrottle {
  private readonly perAddress: number;
  private readonly perMinute: number;
  private readonly addresses = new Map<string, AddressState>();
  private readonly succeededAt = new Map<string, number>();
  /** When each failure of the last minute happened, oldest first; at most perMinute kept. */
  private readonly recentFailures: number[] = [];

  constructor(options: SignInThrottleOptions = {}) {
    this.perAddress = options.maxFailedSignInsPerAddress ?? SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT;
    this.perMinute = options.maxFailedSignInsPerMinute ?? SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT;
  }

  /** How long this address must wait before its credential is checked again; 0 when it may try now. */
  retryAfterMs(address: string, now = monotonicMs()): number {
    const own = this.addresses.get(address);
    if (own && own.lockedUntil > now) return own.lockedUntil - now;
    while (this.recentFailures.length && this.recentFailures[0]! <= now - GLOBAL_WINDOW_MS) this.recentFailures.shift();
    if (this.recentFailures.length >= this.perMinute && !this.knownGood(address, now)) {
      return this.recentFailures[0]! + GLOBAL_WINDOW_MS - now;
    }
    return 0;
  }

  /** Counts a failure; returns the lockout it starts for this address, in ms (0: none yet). */
  failed(address: string, now = monotonicMs()): number {
    const prev = this.addresses.get(address);
    const failures = prev && now - prev.lastFailureAt < FAILURES_FORGOTTEN_AFTER_MS ? prev.failures + 1 : 1;
    const over = failures - this.perAddress;
    const lockedUntil = over >= 0 ? now + Math.min(SIGN_IN_LOCKOUT_MS_MIN * 2 ** Math.min(over, 30), SIGN_IN_LOCKOUT_MS_MAX) : 0;
    remember(this.addresses, address, { failures, lastFailureAt: now, lockedUntil });
    this.recentFailures.push(now);
    if (this.recentFailures.length > this.perMinute) this.recentFailures.shift();
    return lockedUntil ? lockedUntil - now : 0;
  }

  succeeded(address: string, now = monotonicMs()): void {
    this.addresses.delete(address);
    remember(this.succeededAt, address, now);
  }

  private knownGood(address: string, now: number): boolean {
    const at = this.succeededAt.get(address);
    return at !== undefined && now - at < SUCCESS_REMEMBERED_MS;
  }
}

interface NodeBindings {
  incoming?: { socket?: { remoteAddress?: string } };
}

/**
 * The address a request came from: the socket's peer, or with trustProxy the
 * last X-Forwarded-For entry (the one the proxy in front added; the entries
 * before it are whatever the client sent). Without a Node socket (a fetch
 * handler elsewhere) every request shares the address "unknown".
 */
export function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (forwarded) return forwarded;
  }
  const env = c.env as (NodeBindings & { server?: NodeBindings }) | undefined;
  return (env?.server ?? env)?.incoming?.socket?.remoteAddress ?? 'unknown';
}

/** Whole seconds for a Retry-After header, at least 1. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
