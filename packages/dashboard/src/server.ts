// startDashboard(): the dashboard on its own port (what `sluice dashboard`
// runs). Without an auth setting it refuses to start; with "insecure-local"
// it serves without sign-in and listens on 127.0.0.1 only.
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { buildDashboard } from './app.js';
import { DashboardConfigError, DashboardServerError } from './errors.js';
import { resolveAuth, resolveOptions, type DashboardAuth, type DashboardOptions } from './options.js';

export interface DashboardServerOptions extends Omit<DashboardOptions, 'auth'> {
  /** As for createDashboard(), or "insecure-local": no sign-in, and the server listens on 127.0.0.1 only. */
  auth: DashboardAuth | 'insecure-local';
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to listen on. Default 127.0.0.1; "0.0.0.0" exposes it (put TLS in front). */
  host?: string;
}

export interface DashboardServer {
  /** Where the dashboard answers, e.g. http://127.0.0.1:4000 (plus basePath). */
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';

export async function startDashboard(options: DashboardServerOptions): Promise<DashboardServer> {
  const auth = resolveAuth(options?.auth, true);
  const opts = resolveOptions({ ...options, auth: options.auth as DashboardAuth }, auth);
  const port = options.port;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new DashboardConfigError('port', 'must be an integer from 0 to 65535');
  let host = options.host ?? LOOPBACK;
  if (auth.kind === 'insecure-local') {
    if (options.host !== undefined && options.host !== LOOPBACK) {
      throw new DashboardConfigError('host', 'insecure-local serves without sign-in and listens on 127.0.0.1 only');
    }
    host = LOOPBACK;
  }
  const app = buildDashboard(opts);
  let server!: ServerType;
  const bound = await new Promise<number>((resolve, reject) => {
    server = serve({ fetch: app.fetch, port, hostname: host }, (info: AddressInfo) => resolve(info.port));
    server.once('error', (err: Error) => reject(new DashboardServerError(`cannot listen on ${host}:${port}: ${err.message}`, { cause: err })));
  });
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    port: bound,
    host,
    url: `http://${shownHost}:${bound}${opts.basePath}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
