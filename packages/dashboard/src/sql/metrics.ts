// Throughput and error-rate series for the overview charts, from
// sluice.metrics_minutely summed over its shards (and over queues unless one
// is asked for). The range picks the bucket: an hour in minutes, a day in
// quarter hours. Empty buckets come back as zeros, so a chart has no gaps.
import type { Queryable } from 'sluice/admin';

export type ChartRange = 'hour' | 'day';

export const CHART_RANGES: Record<ChartRange, { spanMinutes: number; bucketMinutes: number }> = {
  hour: { spanMinutes: 60, bucketMinutes: 1 },
  day: { spanMinutes: 24 * 60, bucketMinutes: 15 },
};

export interface MetricsBucket {
  at: Date;
  enqueued: number;
  completed: number;
  failed: number;
  dead: number;
}

export async function metricsSeries(db: Queryable, range: ChartRange, queue: string | null): Promise<MetricsBucket[]> {
  const { spanMinutes, bucketMinutes } = CHART_RANGES[range];
  const { rows } = await db.query<{ at: Date; enqueued: string; completed: string; failed: string; dead: string }>({
    name: 'sluice_dashboard_metrics_series',
    text: `
      WITH w AS (
        SELECT date_bin(make_interval(mins => $1::int), now(), 'epoch'::timestamptz) AS last_bucket
      ), s AS (
        SELECT w.last_bucket - make_interval(mins => $1::int * ($2::int / $1::int - 1)) AS first_bucket, w.last_bucket FROM w
      ), b AS (
        SELECT date_bin(make_interval(mins => $1::int), m.minute, 'epoch'::timestamptz) AS at,
          sum(m.enqueued) AS enqueued, sum(m.completed) AS completed, sum(m.failed) AS failed, sum(m.dead) AS dead
        FROM sluice.metrics_minutely m, s
        WHERE m.minute >= s.first_bucket AND ($3::text IS NULL OR m.queue = $3)
        GROUP BY 1
      )
      SELECT g.at, coalesce(b.enqueued, 0) AS enqueued, coalesce(b.completed, 0) AS completed,
        coalesce(b.failed, 0) AS failed, coalesce(b.dead, 0) AS dead
      FROM s, generate_series(s.first_bucket, s.last_bucket, make_interval(mins => $1::int)) AS g(at)
      LEFT JOIN b ON b.at = g.at
      ORDER BY g.at`,
    values: [bucketMinutes, spanMinutes, queue],
  });
  return rows.map((r) => ({
    at: r.at,
    enqueued: Number(r.enqueued),
    completed: Number(r.completed),
    failed: Number(r.failed),
    dead: Number(r.dead),
  }));
}
