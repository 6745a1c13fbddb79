// The order in which one claim's jobs of several queues run. The claim takes
// each queue's share of the worker's room by weight, but its rows come back
// by priority and run_at across all of them, so the queue whose jobs are
// oldest would fill the slots first and the weights would only show over
// several claims. With a prefetch of hundreds, a claim is many seconds of
// slot time, so weights are kept within a claim: at each priority, every
// queue's rows are spread evenly over the batch (stride order), which runs
// them in proportion to what each queue was given. A queue's own order
// (priority, then run_at, then id) is unchanged.

export interface QueueRow {
  queue: string;
  priority: number;
}

export function interleaveByQueue<R extends QueueRow>(rows: R[]): R[] {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.queue, (counts.get(r.queue) ?? 0) + 1);
  if (counts.size < 2) return rows;
  const seen = new Map<string, number>();
  const keyed = rows.map((row) => {
    const k = (seen.get(row.queue) ?? 0) + 1;
    seen.set(row.queue, k);
    return { row, stride: k / counts.get(row.queue)! };
  });
  keyed.sort((a, b) => b.row.priority - a.row.priority || a.stride - b.stride);
  return keyed.map((k) => k.row);
}
