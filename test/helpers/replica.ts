// A real streaming replica for the read-replica tests, started from the
// installed PostgreSQL binaries: `pg_basebackup -R` from the local server
// into a temporary directory, then a second `postgres` on a free port. When
// the local server does not allow replication connections (pg_hba.conf has
// no `replication` line), the replica is taken from a primary of its own,
// made with initdb in the same directory. PostgreSQL refuses to run as root:
// as root, the servers run as the `postgres` OS user.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './port.js';

const run = promisify(execFile);
const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];

export interface Replica {
  /** URL of a database on the primary the replica follows. */
  primaryUrl(database: string): string;
  replicaUrl(database: string): string;
  /** True when the primary is the local server itself; false when a private one was made. */
  fromLocalServer: boolean;
  stop(): Promise<void>;
}

interface Runner {
  /** Runs a PostgreSQL binary as the OS user the servers run as. */
  argv(bin: string, args: string[]): [string, string[]];
  owner: { uid: number; gid: number } | null;
}

async function runner(): Promise<Runner | string> {
  if (userInfo().uid !== 0) return { argv: (bin, args) => [bin, args], owner: null };
  try {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return 'running as root without runuser';
    return { argv: (bin, args) => ['runuser', ['-u', 'postgres', '--', bin, ...args]], owner: { uid: Number(stdout), gid: Number(gid) } };
  } catch {
    return 'running as root and there is no postgres OS user to run a server as';
  }
}

function parseLocal(adminUrl: string): { host: string; port: number; user: string } {
  const u = new URL(adminUrl);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres') };
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => {});
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const SERVER_CONF = (port: number, dir: string) => `port = ${port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${dir}'
max_connections = 40
shared_buffers = 32MB
fsync = off
hot_standby = on
wal_level = replica
max_wal_senders = 4
logging_collector = off
`;
const HBA = `local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
`;

/**
 * Starts a replica, or returns why it cannot run here (the caller skips with
 * that reason printed).
 */
export async function startReplica(adminUrl: string): Promise<Replica | string> {
  const bin = BIN_DIRS.find((d) => existsSync(join(d, 'pg_basebackup')) && existsSync(join(d, 'postgres')));
  if (!bin) return `no PostgreSQL binaries in ${BIN_DIRS.join(', ')}`;
  const r = await runner();
  if (typeof r === 'string') return r;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-replica-'));
  if (r.owner) await chown(dir, r.owner.uid, r.owner.gid);
  await chmod(dir, 0o700);
  const servers: ChildProcess[] = [];
  const exec = (name: string, args: string[]) => {
    const [cmd, argv] = r.argv(join(bin, name), args);
    return run(cmd, argv, { timeout: 300_000 });
  };
  const serve = async (data: string, port: number) => {
    await writeFile(join(data, 'postgresql.conf'), SERVER_CONF(port, dir));
    await writeFile(join(data, 'pg_hba.conf'), HBA);
    await writeFile(join(data, 'pg_ident.conf'), '');
    if (r.owner) for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']) await chown(join(data, f), r.owner.uid, r.owner.gid);
    const [cmd, argv] = r.argv(join(bin, 'postgres'), ['-D', data]);
    const server = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    servers.push(server);
    try {
      await waitReady(`postgres://postgres@127.0.0.1:${port}/postgres`, 60_000);
    } catch (err) {
      throw new Error(`server on port ${port} did not start: ${log}`, { cause: err });
    }
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async () => {
    // runuser does not pass signals on: stop each postmaster by the pid it wrote (SIGINT: fast shutdown).
    for (const data of [join(dir, 'replica'), join(dir, 'primary')]) {
      const pid = Number((await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
      if (!pid || !alive(pid)) continue;
      process.kill(pid, 'SIGINT');
      const deadline = Date.now() + 15_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const local = parseLocal(adminUrl);
    const replicaData = join(dir, 'replica');
    const replicaPort = await freePort();
    let primary = local;
    let fromLocalServer = true;
    const basebackup = (from: { host: string; port: number; user: string }) =>
      exec('pg_basebackup', ['-h', from.host, '-p', String(from.port), '-U', from.user, '-D', replicaData, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    try {
      await basebackup(local);
    } catch (err) {
      const message = (err as { stderr?: string }).stderr ?? String(err);
      if (!/pg_hba\.conf|replication/i.test(message)) throw err;
      console.log(`read replica: the local server refuses replication connections (${message.trim().split('\n')[0]}); using a private primary made with initdb`);
      await rm(replicaData, { recursive: true, force: true });
      const primaryData = join(dir, 'primary');
      await exec('initdb', ['-D', primaryData, '-U', 'postgres', '--auth=trust', '--no-sync']);
      const primaryPort = await freePort();
      await serve(primaryData, primaryPort);
      primary = { host: '127.0.0.1', port: primaryPort, user: 'postgres' };
      fromLocalServer = false;
      await basebackup(primary);
    }
    await serve(replicaData, replicaPort);
    const url = (port: number, user: string, database: string) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
    return {
      primaryUrl: (database) => url(primary.port, primary.user, database),
      replicaUrl: (database) => url(replicaPort, primary.user, database),
      fromLocalServer,
      stop,
    };
  } catch (err) {
    await stop();
    return `could not start a replica: ${(err as Error).message.split('\n')[0]}`;
  }
}
