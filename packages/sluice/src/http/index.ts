export { createHttpApi, HTTP_MAX_BODY_BYTES_DEFAULT, HTTP_TOKEN_MIN_LENGTH } from './api.js';
export type { HttpApiOptions } from './api.js';
export { startHttpApi, HttpApiServerError } from './server.js';
export type { HttpApiServer, HttpApiServerOptions } from './server.js';
