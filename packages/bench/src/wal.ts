// WAL written on behalf of one database between two points. The server's
// pg_current_wal_lsn() counts every database's WAL, and on a shared server
// other work (a CREATE DATABASE copies a whole template into the WAL) would
// swamp a drain's. When pg_waldump and the server's pg_wal are readable here
// (same machine, enough rights), the records are read back and only those of
// this database are summed: records touching one of its blocks, plus the
// commit and other block-less records of transactions that did. Otherwise the
// plain LSN difference is reported and marked as server-wide.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type pg from 'pg';

export interface WalMark {
  lsn: string;
  /** A temporary replication slot holding the WAL from `lsn` on until it is read back (null: none could be made). */
  slot: string | null;
}

export interface WalBytes {
  bytes: number;
  /** True when pg_waldump separated this database's records; false: every database's WAL counted. */
  isolated: boolean;
}

let slots = 0;

/**
 * The current WAL position. A checkpoint (anyone's) may recycle the WAL
 * segments behind it before they are read back, so a temporary physical
 * replication slot keeps them until walSince() has read them (it goes away
 * with the session in any case).
 */
export async function walMark(client: pg.Client): Promise<WalMark> {
  let slot: string | null = `bench_wal_${process.pid}_${++slots}`;
  try {
    await client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slot]);
  } catch {
    slot = null;
  }
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return { lsn: rows[0]!.lsn, slot };
}

let waldump: string | null | undefined;

function findWaldump(): string | null {
  if (waldump !== undefined) return waldump;
  const candidates = [process.env.BENCH_PG_WALDUMP];
  try {
    candidates.push(join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), 'pg_waldump'));
  } catch {
    // no pg_config on PATH
  }
  waldump = candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
  return waldump;
}

const RECORD = /len \(rec\/tot\):\s*\d+\/\s*(\d+), tx:\s*(\d+),/;
const BLOCK_REF = /rel \d+\/(\d+)\/\d+/g;

/** Sums the WAL records of database `dbOid` in [from, to) with pg_waldump; null if it cannot be read. */
async function isolatedBytes(walDir: string, dbOid: number, from: string, to: string): Promise<number | null> {
  const bin = findWaldump();
  if (!bin || !existsSync(walDir)) return null;
  const child = spawn(bin, ['-p', walDir, '-s', from, '-e', to], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const ours = new Set<string>();
  let bytes = 0;
  let records = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    const m = RECORD.exec(line);
    if (!m) continue;
    records++;
    const tot = Number(m[1]);
    const tx = m[2]!;
    let mine = false;
    for (const ref of line.matchAll(BLOCK_REF)) {
      if (Number(ref[1]) === dbOid) mine = true;
    }
    if (mine) {
      bytes += tot;
      if (tx !== '0') ours.add(tx);
    } else if (tx !== '0' && ours.has(tx) && !line.includes('blkref')) {
      bytes += tot;
    }
  }
  const code = await new Promise<number | null>((r) => child.on('close', r));
  // pg_waldump ends with an error when the last record is incomplete at `to`; what it read still counts.
  if (records === 0 && code !== 0) {
    console.error(`[wal] pg_waldump failed (${stderr.trim().split('\n')[0]}); counting the whole server's WAL`);
    return null;
  }
  return bytes;
}

/** WAL of `client`'s database since `start`, waiting until it has been written out. */
export async function walSince(client: pg.Client, start: WalMark): Promise<WalBytes> {
  const end = await walMark(client);
  // Asynchronous commits may still sit in the WAL buffers; the WAL writer flushes them within its delay.
  for (let i = 0; i < 100; i++) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_current_wal_lsn() >= $1::pg_lsn AS ok', [end.lsn]);
    if (rows[0]!.ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const { rows } = await client.query<{ oid: number; total: string; dir: string | null }>(
    `SELECT d.oid::int AS oid, pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS total,
            (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS dir
     FROM pg_database d WHERE d.datname = current_database()`,
    [start.lsn, end.lsn],
  );
  const { oid, total, dir } = rows[0]!;
  const isolated = dir && start.slot ? await isolatedBytes(join(dir, 'pg_wal'), oid, start.lsn, end.lsn) : null;
  if (start.slot) await client.query('SELECT pg_drop_replication_slot($1)', [start.slot]);
  return isolated === null ? { bytes: Number(total), isolated: false } : { bytes: isolated, isolated: true };
}
