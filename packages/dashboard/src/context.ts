// What every route handler shares: the resolved options, the signer, the
// viewer of this request, and the helpers that turn them into a page.
import type { Context } from 'hono';
import type { Logger } from 'pino';
import type { SignInThrottle } from 'sluice/http';
import type { Signer } from './auth.js';
import type { ResolvedOptions } from './options.js';
import type { PageContext } from './views/layout.js';

export interface Viewer {
  /** The value this viewer's CSRF tokens are bound to. */
  csrfSeed: string;
  /** The signed-in session's id (token and password modes), else null. */
  session: string | null;
  canSignOut: boolean;
}

export type DashEnv = { Variables: { viewer: Viewer } };
export type DashContext = Context<DashEnv>;

export interface Deps {
  opts: ResolvedOptions;
  signer: Signer;
  throttle: SignInThrottle;
  logger: Logger;
}

export function pageContext(deps: Deps, c: DashContext): PageContext {
  const viewer = c.get('viewer');
  return {
    base: deps.opts.basePath,
    csrf: deps.signer.csrfToken(viewer.csrfSeed),
    readOnly: deps.opts.readOnly,
    canSignOut: viewer.canSignOut,
    showPayloads: deps.opts.showPayloads,
    showStackTraces: deps.opts.showStackTraces,
    refreshIntervalMs: deps.opts.refreshIntervalMs,
    now: Date.now(),
  };
}
