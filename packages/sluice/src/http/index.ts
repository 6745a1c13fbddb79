// `sluice/http`: the HTTP API as a Hono app to mount, or on its own port.
// HTTP_TOKEN_MIN_LENGTH is the rule its `token` option must meet.
export { createHttpApi, HTTP_TOKEN_MIN_LENGTH } from './api.js';
export type { HttpApiOptions } from './api.js';
export { startHttpApi } from './server.js';
export type { HttpApiServer, HttpApiServerOptions } from './server.js';
