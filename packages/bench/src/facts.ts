// The machine and server the figures come from, printed beside them: a
// throughput means little without cores, fsync policy and buffer sizes.
import { cpus, loadavg, release, totalmem } from 'node:os';
import { withAdmin } from './db.js';
import { node22Path, nodeVersion } from './node22.js';

export interface Facts {
  date: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  /** The Node every system's child runs on. */
  nodeSluice: string;
  postgres: string;
  settings: Record<string, string>;
  /** Other sessions' active queries when the run started and ended: a busy server skews figures. */
  otherActiveSessions: { atStart: number; atEnd?: number };
  /** 1-minute load average at start and end: on 2 cores, anything above ~2 means contention. */
  loadAverage: { atStart: number; atEnd?: number };
}

const SETTINGS = [
  'shared_buffers',
  'synchronous_commit',
  'fsync',
  'full_page_writes',
  'wal_level',
  'max_wal_size',
  'checkpoint_timeout',
  'work_mem',
  'effective_cache_size',
  'max_connections',
  'jit',
  'autovacuum',
];

export async function otherActiveSessions(): Promise<number> {
  return withAdmin(async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()
         AND datname NOT LIKE 'sluice\\_bench\\_%'`,
    );
    return rows[0]!.n;
  });
}

export async function machineFacts(): Promise<Facts> {
  const server = await withAdmin(async (c) => {
    const version = (await c.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
    const { rows } = await c.query<{ name: string; setting: string }>(
      `SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name = ANY($1) ORDER BY name`,
      [SETTINGS],
    );
    return { version, settings: Object.fromEntries(rows.map((r) => [r.name, r.setting])) };
  });
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    cpuModel: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    nodeSluice: nodeVersion(node22Path()),
    postgres: server.version,
    settings: server.settings,
    otherActiveSessions: { atStart: await otherActiveSessions() },
    loadAverage: { atStart: loadavg()[0]! },
  };
}
