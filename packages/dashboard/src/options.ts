// The dashboard's options, their defaults as named constants, and their
// validation. createDashboard() and startDashboard() both resolve options
// here, so a bad one fails before anything is served.
import { randomBytes } from 'node:crypto';
import type { Sluice } from 'sluice';
import { WORKER_DEAD_AFTER_MS_DEFAULT } from 'sluice/admin';
import { HTTP_TOKEN_MIN_LENGTH, SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT, SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT } from 'sluice/http';
import type { Logger } from 'pino';
import { DashboardConfigError } from './errors.js';

/** Shortest password accepted for user/password sign-in, in characters. */
export const DASHBOARD_PASSWORD_MIN_LENGTH = 12;
/** How long a sign-in lasts (12 h). */
export const DASHBOARD_SESSION_TTL_MS_DEFAULT = 12 * 3_600_000;
/** How often the overview refreshes itself in the browser. */
export const DASHBOARD_REFRESH_INTERVAL_MS_DEFAULT = 5_000;
/** Rows per page of the jobs and dead-letter lists. */
export const DASHBOARD_PAGE_SIZE_DEFAULT = 50;
/**
 * Job ids one filtered list page searches at most (by name, queue or tag
 * text, which no index serves). The page says where it stopped and links on.
 */
export const DASHBOARD_SEARCH_WINDOW_DEFAULT = 100_000;
/** Largest form body accepted, in bytes. */
export const DASHBOARD_MAX_BODY_BYTES = 65_536;

/**
 * Who may use the dashboard: a shared bearer token (typed into the sign-in
 * page), a user and password, or the host application's own check (for a
 * dashboard mounted behind the app's existing sign-in).
 */
export type DashboardAuth =
  | { token: string }
  | { user: string; password: string }
  | { authorize: (request: Request) => boolean | Promise<boolean> };

export interface DashboardOptions {
  sluice: Sluice;
  /** Required: see DashboardAuth. There is no way to mount the dashboard without one. */
  auth: DashboardAuth;
  /** Where the dashboard is mounted, e.g. "/admin/jobs". Default "" (the root). */
  basePath?: string;
  /** Shows no action and refuses every POST except sign-in/out. Default false. */
  readOnly?: boolean;
  /** Show job payloads, results and cron payloads. Default: true, false when readOnly. */
  showPayloads?: boolean;
  /** Show the stack traces of failed attempts (messages are always shown). Default: true, false when readOnly. */
  showStackTraces?: boolean;
  /**
   * Signs session cookies and CSRF tokens; at least 32 characters. Give the
   * same secret to every instance behind one load balancer. Default: random
   * per process (a restart signs everybody out).
   */
  sessionSecret?: string;
  /** How long a sign-in lasts, in ms. Default 12 h. */
  sessionTtlMs?: number;
  /** Overview refresh period in the browser, in ms. Default 5000. */
  refreshIntervalMs?: number;
  /** A worker is shown dead once its heartbeat is older than this, in ms. Default 15000 (the workers' default). */
  workerDeadAfterMs?: number;
  /** Rows per list page. Default 50. */
  pageSize?: number;
  /** Job ids a filtered list page searches at most. Default 100000. */
  searchWindow?: number;
  /** Failed sign-ins one client address may make before it is locked out (429, growing). Default 5. */
  maxFailedSignInsPerAddress?: number;
  /** Failed sign-ins from all addresses per minute before addresses with no recent success are locked out. Default 100. */
  maxFailedSignInsPerMinute?: number;
  /**
   * Take the client's address from the last X-Forwarded-For entry instead of
   * the socket. Only behind a proxy that sets it: otherwise a client picks
   * its own address and escapes the lockout. Default false.
   */
  trustProxy?: boolean;
  logger?: Logger;
}

export type AuthMode =
  | { kind: 'token'; token: string }
  | { kind: 'password'; user: string; password: string }
  | { kind: 'authorize'; authorize: (request: Request) => boolean | Promise<boolean> }
  | { kind: 'insecure-local' };

/** Options after validation, with every default filled in. */
export interface ResolvedOptions {
  sluice: Sluice;
  auth: AuthMode;
  basePath: string;
  readOnly: boolean;
  showPayloads: boolean;
  showStackTraces: boolean;
  sessionSecret: Buffer;
  sessionTtlMs: number;
  refreshIntervalMs: number;
  workerDeadAfterMs: number;
  pageSize: number;
  searchWindow: number;
  maxFailedSignInsPerAddress: number;
  maxFailedSignInsPerMinute: number;
  trustProxy: boolean;
  logger: Logger | undefined;
}

function int(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DashboardConfigError(option, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new DashboardConfigError(option, 'must be true or false');
  return value;
}

export function resolveAuth(auth: unknown, allowInsecureLocal: boolean): AuthMode {
  if (auth === 'insecure-local') {
    if (!allowInsecureLocal) {
      throw new DashboardConfigError('auth', '"insecure-local" is only for startDashboard(), which then listens on 127.0.0.1 only');
    }
    return { kind: 'insecure-local' };
  }
  if (!auth || typeof auth !== 'object') {
    throw new DashboardConfigError('auth', 'is required: { token }, { user, password } or { authorize }');
  }
  const a = auth as Record<string, unknown>;
  const keys = Object.keys(a).sort().join(',');
  if (keys === 'token') {
    if (typeof a.token !== 'string' || a.token.length < HTTP_TOKEN_MIN_LENGTH) {
      throw new DashboardConfigError('auth.token', `must be a string of at least ${HTTP_TOKEN_MIN_LENGTH} characters`);
    }
    return { kind: 'token', token: a.token };
  }
  if (keys === 'password,user') {
    if (typeof a.user !== 'string' || a.user.length < 1 || a.user.length > 128) {
      throw new DashboardConfigError('auth.user', 'must be a string of 1 to 128 characters');
    }
    if (typeof a.password !== 'string' || a.password.length < DASHBOARD_PASSWORD_MIN_LENGTH) {
      throw new DashboardConfigError('auth.password', `must be a string of at least ${DASHBOARD_PASSWORD_MIN_LENGTH} characters`);
    }
    return { kind: 'password', user: a.user, password: a.password };
  }
  if (keys === 'authorize') {
    if (typeof a.authorize !== 'function') throw new DashboardConfigError('auth.authorize', 'must be a function (request) => boolean');
    return { kind: 'authorize', authorize: a.authorize as (request: Request) => boolean | Promise<boolean> };
  }
  throw new DashboardConfigError('auth', 'give exactly one of { token }, { user, password } or { authorize }');
}

export function resolveOptions(options: DashboardOptions, auth: AuthMode): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new DashboardConfigError('options', 'must be an object');
  const o = options as DashboardOptions;
  if (!o.sluice || typeof o.sluice !== 'object' || !o.sluice.pool) throw new DashboardConfigError('sluice', 'is required (a Sluice instance)');
  const basePath = o.basePath ?? '';
  if (typeof basePath !== 'string' || !/^(\/[A-Za-z0-9._~-]+)*$/.test(basePath) || basePath.length > 256) {
    throw new DashboardConfigError('basePath', 'must be "" or a path like "/admin/jobs" (no trailing slash)');
  }
  const readOnly = bool('readOnly', o.readOnly, false);
  let sessionSecret: Buffer;
  if (o.sessionSecret === undefined) {
    sessionSecret = randomBytes(32);
  } else {
    if (typeof o.sessionSecret !== 'string' || o.sessionSecret.length < 32) {
      throw new DashboardConfigError('sessionSecret', 'must be a string of at least 32 characters');
    }
    sessionSecret = Buffer.from(o.sessionSecret, 'utf8');
  }
  return {
    sluice: o.sluice,
    auth,
    basePath,
    readOnly,
    showPayloads: bool('showPayloads', o.showPayloads, !readOnly),
    showStackTraces: bool('showStackTraces', o.showStackTraces, !readOnly),
    sessionSecret,
    sessionTtlMs: int('sessionTtlMs', o.sessionTtlMs, DASHBOARD_SESSION_TTL_MS_DEFAULT, 60_000, 30 * 86_400_000),
    refreshIntervalMs: int('refreshIntervalMs', o.refreshIntervalMs, DASHBOARD_REFRESH_INTERVAL_MS_DEFAULT, 500, 3_600_000),
    workerDeadAfterMs: int('workerDeadAfterMs', o.workerDeadAfterMs, WORKER_DEAD_AFTER_MS_DEFAULT, 1_000, 86_400_000),
    pageSize: int('pageSize', o.pageSize, DASHBOARD_PAGE_SIZE_DEFAULT, 1, 1_000),
    searchWindow: int('searchWindow', o.searchWindow, DASHBOARD_SEARCH_WINDOW_DEFAULT, 1_000, 100_000_000),
    maxFailedSignInsPerAddress: int('maxFailedSignInsPerAddress', o.maxFailedSignInsPerAddress, SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT, 1, 1_000_000),
    maxFailedSignInsPerMinute: int('maxFailedSignInsPerMinute', o.maxFailedSignInsPerMinute, SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT, 1, 1_000_000),
    trustProxy: bool('trustProxy', o.trustProxy, false),
    logger: o.logger,
  };
}
