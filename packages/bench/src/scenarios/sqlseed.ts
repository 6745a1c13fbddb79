// Server-side seeding for the large scenarios: sluice.enqueue_many over
// generate_series in chunks, so a million jobs cost no client memory and no
// per-row round trip (and the client process measured later never held them).
import pg from 'pg';

const CHUNK = 50_000;

export interface SqlSeedOptions {
  /** Job type name; default bench.noop. */
  name?: string;
  queue?: string;
  /** Every k-th chunk is scheduled a day ahead instead of available (0: none). */
  scheduledChunks?: (chunk: number) => boolean;
}

/** Enqueues `count` jobs with payload {"i": n}; returns how many were scheduled rather than available. */
export async function seedSql(url: string, count: number, o: SqlSeedOptions = {}): Promise<{ scheduled: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let scheduled = 0;
  try {
    for (let from = 0, k = 0; from < count; from += CHUNK, k++) {
      const n = Math.min(CHUNK, count - from);
      const later = o.scheduledChunks?.(k) ?? false;
      if (later) scheduled += n;
      await client.query(
        `SELECT count(*) FROM sluice.enqueue_many($1,
           (SELECT jsonb_agg(jsonb_build_object('i', g)) FROM generate_series($2::int, $2::int + $3::int - 1) g),
           queue => $4, run_at => CASE WHEN $5::boolean THEN now() + interval '1 day' END)`,
        [o.name ?? 'bench.noop', from, n, o.queue ?? null, later],
      );
    }
  } finally {
    await client.end();
  }
  return { scheduled };
}
