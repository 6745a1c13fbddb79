// @sluice/dashboard: public exports only.
export { createDashboard } from './dashboard.js';
export { startDashboard } from './server.js';
export type { DashboardServer, DashboardServerOptions } from './server.js';
export { toNodeListener } from './node.js';
export type { NodeListener } from './node.js';
export { CONTENT_SECURITY_POLICY } from './security.js';
export { DashboardConfigError, DashboardServerError, DashboardRequestError } from './errors.js';
export {
  DASHBOARD_PASSWORD_MIN_LENGTH,
  DASHBOARD_SESSION_TTL_MS_DEFAULT,
  DASHBOARD_REFRESH_INTERVAL_MS_DEFAULT,
  DASHBOARD_PAGE_SIZE_DEFAULT,
  DASHBOARD_SEARCH_WINDOW_DEFAULT,
  DASHBOARD_MAX_BODY_BYTES,
} from './options.js';
export type { DashboardOptions, DashboardAuth } from './options.js';
