// A write of several statements (a flow, a batch) into a bounded queue: one
// statement larger than the queue's max_depth is refused by the SQL at once,
// but statements that each fit and together cannot would be written one by
// one, and the last would wait out its block timeout for room that can never
// be made. Checked before anything is written.
import { QueueFullError } from './errors.js';
import type { Queryable } from './executor.js';
import { queueRefusingDepths } from './sql/queues.js';

/** Throws QueueFullError when the rows bound for a queue (over more than one statement) exceed its max_depth. */
export async function refuseWhatCannotFit(db: Queryable, statements: readonly { queue: string; rows: number }[]): Promise<void> {
  const rows = new Map<string, number>();
  const split = new Set<string>();
  for (const s of statements) {
    if (rows.has(s.queue)) split.add(s.queue);
    rows.set(s.queue, (rows.get(s.queue) ?? 0) + s.rows);
  }
  if (split.size === 0) return;
  const depths = await queueRefusingDepths(db, [...split]);
  for (const [queue, max] of depths) {
    if (rows.get(queue)! > max) throw new QueueFullError(queue);
  }
}
