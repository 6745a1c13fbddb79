// Server-side seeding for the large scenarios: sluice.enqueue_many (or the
// bare client's INSERT) over generate_series in chunks, so a million jobs cost
// no client memory and no per-row round trip (and the client process measured
// later never held them).
import pg from 'pg';
import { SEED_SERIES } from '../systems/bare-client.mjs';

const CHUNK = 50_000;

export interface SqlSeedOptions {
  /** Job type name; default bench.noop. */
  name?: string;
  queue?: string;
  /** Every k-th chunk is scheduled a day ahead instead of available (0: none). */
  scheduledChunks?: (chunk: number) => boolean;
}

/** Runs `chunk(client, from, n, k)` over [0, count) in chunks of 50,000 on one connection. */
async function inChunks(url: string, count: number, chunk: (c: pg.Client, from: number, n: number, k: number) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let from = 0, k = 0; from < count; from += CHUNK, k++) await chunk(client, from, Math.min(CHUNK, count - from), k);
  } finally {
    await client.end();
  }
}

/** Enqueues `count` jobs with payload {"i": n}; returns how many were scheduled rather than available. */
export async function seedSql(url: string, count: number, o: SqlSeedOptions = {}): Promise<{ scheduled: number }> {
  let scheduled = 0;
  await inChunks(url, count, async (client, from, n, k) => {
    const later = o.scheduledChunks?.(k) ?? false;
    if (later) scheduled += n;
    await client.query(
      `SELECT count(*) FROM sluice.enqueue_many($1,
         (SELECT jsonb_agg(jsonb_build_object('i', g)) FROM generate_series($2::int, $2::int + $3::int - 1) g),
         queue => $4, run_at => CASE WHEN $5::boolean THEN now() + interval '1 day' END)`,
      [o.name ?? 'bench.noop', from, n, o.queue ?? null, later],
    );
  });
  return { scheduled };
}

/** The same rows, {"i": n}, inserted into the bare client's bare.jobs. */
export async function seedBareSql(url: string, count: number): Promise<void> {
  await inChunks(url, count, async (client, from, n) => void (await client.query(SEED_SERIES, [from, n])));
}
