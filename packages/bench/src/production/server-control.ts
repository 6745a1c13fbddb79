// Restarts the PostgreSQL server the production scenarios run against, for
// the restart scenario. It needs that server's data directory
// (BENCH_PG_DATA) and pg_ctl (from `pg_config --bindir`, or BENCH_PG_CTL);
// pg_ctl runs as the owner of the data directory, since PostgreSQL refuses
// to run as root. `pg_ctl restart` starts the server again with the options
// it was started with (postmaster.opts) and returns once it accepts
// connections.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type RestartMode = 'immediate' | 'fast';

export interface ServerControl {
  dataDir: string;
  /** Stops the server (immediate: as a crash, WAL replayed at start; fast: a clean shutdown) and starts it again. */
  restart(mode: RestartMode): Promise<{ stoppingAt: number; readyAt: number }>;
}

function pgCtlPath(): string {
  if (process.env.BENCH_PG_CTL) return process.env.BENCH_PG_CTL;
  const bin = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  return join(bin, 'pg_ctl');
}

/** The control of the server at BENCH_PG_DATA; throws with what is missing when it cannot be had. */
export function serverControl(): ServerControl {
  const dataDir = process.env.BENCH_PG_DATA;
  if (!dataDir || !existsSync(join(dataDir, 'postmaster.pid'))) {
    throw new Error(
      'the restart scenario restarts its server: set BENCH_DATABASE_URL to a server of its own and BENCH_PG_DATA to that server\'s running data directory',
    );
  }
  const pgCtl = pgCtlPath();
  const owner = statSync(dataDir);
  const asOwner = process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {};
  const pgCtlRun = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(pgCtl, ['-D', dataDir, ...args], { ...asOwner, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl ${args.join(' ')} exited with ${code}: ${err.trim()}`))));
    });
  return {
    dataDir,
    async restart(mode) {
      const stoppingAt = Date.now();
      await pgCtlRun(['-m', mode, '-w', '-l', join(dataDir, 'restart.log'), 'restart']);
      return { stoppingAt, readyAt: Date.now() };
    },
  };
}
