// `sluice/http`: the HTTP API as a Hono app to mount, or on its own port,
// and the sign-in throttle it shares with the dashboard. The constants are
// rules a caller's input must meet (token length, JSON depth) and the
// throttle's limits, which the dashboard passes on as its own defaults.
export { createHttpApi, HTTP_TOKEN_MIN_LENGTH } from './api.js';
export { HTTP_MAX_JSON_DEPTH } from './body.js';
export type { HttpApiOptions } from './api.js';
export { startHttpApi } from './server.js';
export type { HttpApiServer, HttpApiServerOptions } from './server.js';
export {
  SignInThrottle,
  clientAddress,
  retryAfterSeconds,
  SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT,
  SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT,
} from './sign-in-throttle.js';
export type { SignInThrottleOptions } from './sign-in-throttle.js';
