// Builds the dashboard's Hono app: security headers on every response,
// public sign-in and assets, then the admission check, the POST guard
// (read-only, same origin, CSRF), the pages and the actions.
import { Hono, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import { bodyLimit } from 'hono/body-limit';
import { pino } from 'pino';
import { SchemaNotMigratedError, ValidationError } from 'sluice';
import { safeMessage, sluiceLogger } from 'sluice/admin';
import { SignInThrottle } from 'sluice/http';
import { assetRoutes } from './assets.js';
import { Signer } from './auth.js';
import { pageContext, type DashContext, type DashEnv, type Deps } from './context.js';
import { DashboardRequestError, PG_INSUFFICIENT_PRIVILEGE } from './errors.js';
import { DASHBOARD_MAX_BODY_BYTES, type ResolvedOptions } from './options.js';
import { actionRoutes } from './routes/actions.js';
import { overviewHandler, pageRoutes } from './routes/pages.js';
import { admit, logoutRoute, sessionRoutes } from './routes/session.js';
import { sameOrigin, securityHeaders } from './security.js';
import { layout } from './views/layout.js';
import { messagePage } from './views/login.js';

function errorPage(deps: Deps, c: DashContext, status: 400 | 403 | 404 | 409 | 500 | 503, text: string): Response | Promise<Response> {
  if (!c.get('viewer')) return c.html(messagePage({ base: deps.opts.basePath, title: 'Error', text }), status);
  const ctx = pageContext(deps, c);
  return c.html(layout(ctx, { title: 'Error', section: null, body: html`<p><a href="${deps.opts.basePath}/">Back to the overview</a></p>`, notice: { kind: 'error', text } }), status);
}

/** Refuses a POST in read-only mode, from another origin, or without this viewer's CSRF token. */
function guardPost(deps: Deps): MiddlewareHandler<DashEnv> {
  return async (c, next) => {
    if (c.req.method !== 'POST') return next();
    const isLogout = new URL(c.req.url).pathname === `${deps.opts.basePath}/logout`;
    if (deps.opts.readOnly && !isLogout) throw new DashboardRequestError(403, 'this dashboard is read-only: actions are refused');
    if (!sameOrigin(c)) throw new DashboardRequestError(403, 'refused: the request came from another site');
    const type = c.req.header('content-type') ?? '';
    if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) {
      throw new DashboardRequestError(403, 'refused: actions are HTML form posts carrying a CSRF token');
    }
    const form = await c.req.parseBody({ all: true });
    if (!deps.signer.csrfValid(c.get('viewer').csrfSeed, form._csrf)) {
      throw new DashboardRequestError(403, 'refused: missing or wrong CSRF token (reload the page and try again)');
    }
    return next();
  };
}

export function buildDashboard(opts: ResolvedOptions): Hono<DashEnv> {
  const logger = sluiceLogger(opts.logger ?? pino({ name: 'sluice-dashboard', level: process.env.SLUICE_LOG_LEVEL ?? 'info' })).child({ component: 'dashboard' });
  const deps: Deps = { opts, signer: new Signer(opts.sessionSecret, opts.auth), throttle: new SignInThrottle(opts), logger };
  const root = new Hono<DashEnv>({ strict: false });
  const app = root.basePath(opts.basePath || '/');

  app.onError((err, c) => {
    if (err instanceof DashboardRequestError) return errorPage(deps, c, err.status, err.message);
    if (err instanceof ValidationError) return errorPage(deps, c, 400, err.message);
    if (err instanceof SchemaNotMigratedError) return errorPage(deps, c, 503, err.message);
    const e = err as { name?: string; code?: string };
    if (e?.code === PG_INSUFFICIENT_PRIVILEGE) {
      return errorPage(deps, c, 403, 'the database role may not do this (permission denied): serve the dashboard read-only under this role');
    }
    // A data exception (SQLSTATE class 22): the database refused a value of the request.
    if (typeof e?.code === 'string' && e.code.startsWith('22')) {
      logger.warn({ err, path: c.req.path }, 'dashboard request refused by the database');
      return errorPage(deps, c, 400, `a value was refused by the database: ${safeMessage(err)}`);
    }
    // The logger's err serializer (safeError) leaves out what could quote a row.
    logger.error({ err, path: c.req.path }, 'dashboard request failed');
    return errorPage(deps, c, 500, 'the request could not be completed');
  });
  app.notFound((c) => errorPage(deps, c, 404, 'no such page'));

  app.use('*', securityHeaders());
  app.use(
    '*',
    bodyLimit({
      maxSize: DASHBOARD_MAX_BODY_BYTES,
      onError: (c) => c.text('request body too large', 413),
    }),
  );
  assetRoutes(app);
  // Every page, the sign-in too (sessions are rows), reads sluice's tables: an
  // unmigrated database gets one page saying so.
  app.use('*', async (_c, next) => {
    await opts.sluice.ready();
    return next();
  });
  sessionRoutes(app, deps);
  app.use('*', admit(deps));
  app.use('*', guardPost(deps));
  logoutRoute(app, deps);
  pageRoutes(app, deps);
  // Under a prefix, "/prefix" is the overview's route; a host router in strict
  // mode also needs "/prefix/" (what the links use) registered as it is.
  if (opts.basePath) root.get(`${opts.basePath}/`, overviewHandler(deps));
  if (!opts.readOnly) actionRoutes(app, deps);
  return app;
}
