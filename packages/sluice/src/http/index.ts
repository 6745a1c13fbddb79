export { createHttpApi, HTTP_MAX_BODY_BYTES_DEFAULT, HTTP_TOKEN_MIN_LENGTH } from './api.js';
export { HTTP_MAX_JSON_DEPTH } from './body.js';
export type { HttpApiOptions } from './api.js';
export { startHttpApi, HttpApiServerError } from './server.js';
export type { HttpApiServer, HttpApiServerOptions } from './server.js';
export {
  SignInThrottle,
  clientAddress,
  retryAfterSeconds,
  SIGN_IN_LOCKOUT_MS_MAX,
  SIGN_IN_LOCKOUT_MS_MIN,
  SIGN_IN_MAX_FAILURES_PER_ADDRESS_DEFAULT,
  SIGN_IN_MAX_FAILURES_PER_MINUTE_DEFAULT,
} from './sign-in-throttle.js';
export type { SignInThrottleOptions } from './sign-in-throttle.js';
