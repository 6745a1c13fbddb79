// Runtime SQL: the depth limits of bounded queues, read before a write of
// several statements (a flow, a batch) so one that can never fit fails at once.
import type { Queryable } from '../executor.js';

/** max_depth of those of `queues` that refuse or block when full (overflow reject or block); the rest have none. */
export async function queueRefusingDepths(db: Queryable, queues: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ name: string; max_depth: number }>({
    name: 'sluice_queue_refusing_depths',
    text: `SELECT name, max_depth FROM sluice.queues
           WHERE name = ANY($1::text[]) AND max_depth IS NOT NULL AND overflow IN ('reject', 'block')`,
    values: [[...queues]],
  });
  return new Map(rows.map((r) => [r.name, r.max_depth]));
}
