// Runtime SQL for pub/sub subscriptions.
import type { Queryable } from '../executor.js';

export async function subscriptionUpsertMany(db: Queryable, subs: { topic: string; jobName: string }[]): Promise<void> {
  if (subs.length === 0) return;
  await db.query({
    name: 'sluice_subscription_upsert_many',
    text: `INSERT INTO sluice.subscriptions (topic, job_name)
           SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
    values: [subs.map((s) => s.topic), subs.map((s) => s.jobName)],
  });
}

/** `payloadJson` is the payload's JSON text, checked by the caller. */
export async function eventPublish(db: Queryable, topic: string, payloadJson: string, sequential: boolean): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>({
    name: 'sluice_event_publish',
    text: `SELECT id FROM sluice.publish($1, $2::jsonb, $3) AS id`,
    values: [topic, payloadJson, sequential],
  });
  return rows.map((r) => Number(r.id));
}
