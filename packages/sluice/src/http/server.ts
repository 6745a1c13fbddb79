// Runs the HTTP API on its own port with @hono/node-server.
import type { AddressInfo } from 'node:net';
import type { ServerType } from '@hono/node-server';
import { HttpApiServerError } from '../errors.js';
import { createHttpApi, type HttpApiOptions } from './api.js';

export interface HttpApiServerOptions extends HttpApiOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to listen on. Default 127.0.0.1: expose it deliberately, behind TLS. */
  host?: string;
}

export interface HttpApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startHttpApi(options: HttpApiServerOptions): Promise<HttpApiServer> {
  const app = createHttpApi(options);
  // Loaded at first use: importing sluice does not load an HTTP server library.
  const { serve } = await import('@hono/node-server');
  const host = options.host ?? '127.0.0.1';
  let server: ServerType;
  const port = await new Promise<number>((resolve, reject) => {
    server = serve({ fetch: app.fetch, port: options.port, hostname: host }, (info: AddressInfo) => resolve(info.port));
    server.once('error', (err: Error) => reject(new HttpApiServerError(`cannot listen on ${host}:${options.port}: ${err.message}`, { cause: err })));
  });
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
