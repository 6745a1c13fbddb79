// A small HTTP server answering GET /metrics in the Prometheus text format.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MetricsServerError } from '../errors.js';
import { safeError } from '../log-safety.js';

export interface MetricsServerOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to listen on. Default: all interfaces, so Prometheus can reach it. */
  host?: string;
  /** Renders the page; called once per scrape. */
  render: () => Promise<string>;
  contentType: string;
  logger?: Logger;
}

export interface MetricsServer {
  /** The port listened on (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: scrape GET /metrics\n');
      return;
    }
    options.render().then(
      (body) => res.writeHead(200, { 'content-type': options.contentType }).end(body),
      (err: unknown) => {
        options.logger?.warn({ err: safeError(err) }, 'metrics scrape failed');
        res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable: the database could not be read\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MetricsServerError(`cannot listen on port ${options.port}: ${err.message}`, { cause: err })));
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
