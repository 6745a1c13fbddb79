// createDashboard(): the dashboard as a Hono app to mount in your own server.
import type { Hono } from 'hono';
import { buildDashboard } from './app.js';
import type { DashEnv } from './context.js';
import { resolveAuth, resolveOptions, type DashboardOptions } from './options.js';

/**
 * The dashboard as a Hono app whose routes live under `basePath`. Mount it
 * in Hono with `app.route('/', dashboard)`, hand `dashboard.fetch` to any
 * fetch server, or use toNodeListener() for Express and Fastify.
 * Throws DashboardConfigError for a missing or weak auth setting.
 */
export function createDashboard(options: DashboardOptions): Hono<DashEnv> {
  const auth = resolveAuth(options?.auth, false);
  return buildDashboard(resolveOptions(options, auth));
}
