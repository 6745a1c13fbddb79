// Starts Debian's PgBouncer in transaction mode in front of the test server,
// for the pooler test. Returns null (with the reason) where it cannot run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './port.js';

export interface Bouncer {
  /** The URL of a database through PgBouncer. */
  url(database: string): string;
  stop(): Promise<void>;
}

const BINARY = '/usr/sbin/pgbouncer';

/** `port`: listen there (a port a test pointed something at while nothing listened); default a free one. */
export async function startPgBouncer(serverUrl: string, options: { port?: number } = {}): Promise<Bouncer | { skip: string }> {
  if (!existsSync(BINARY)) return { skip: `${BINARY} is not installed (apt-get install pgbouncer)` };
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return { skip: 'no postgres user to run PgBouncer as (it refuses root)' };
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bouncer-'));
  chmodSync(dir, 0o777);
  const port = options.port ?? (await freePort());
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" "${password}"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      `auth_type = ${password ? 'plain' : 'trust'}`,
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 4',
      'max_client_conn = 200',
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  for (const f of ['userlist.txt', 'pgbouncer.ini']) chmodSync(join(dir, f), 0o644);
  const child: ChildProcess = spawn(BINARY, ['-u', 'postgres', join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Wait until it accepts connections.
  const { default: pg } = await import('pg');
  const probeUrl = new URL(serverUrl);
  probeUrl.host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: probeUrl.toString() });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (i > 50 || child.exitCode !== null) {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        return { skip: `PgBouncer did not start: ${(err as Error).message}` };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url(database) {
      const u = new URL(serverUrl);
      u.host = `127.0.0.1:${port}`;
      u.pathname = `/${database}`;
      return u.toString();
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
