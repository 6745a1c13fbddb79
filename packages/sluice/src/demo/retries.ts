// Section 3: a failing job retries with backoff, lands in the dead-letter
// queue with every attempt's error, and is replayed once the cause is fixed.
// A PermanentError skips the retries.
import type { JobEvent } from '../index.js';
import type { DemoContext } from './context.js';
import { chargeCard, deliverWebhook } from './jobs.js';
import { heading, note, showQuery } from './output.js';
import { waitForState } from './wait.js';

export async function showRetries({ pool, sluice, worker, world }: DemoContext): Promise<void> {
  heading('3. Retries with backoff, the dead-letter queue, and replay');
  const b = deliverWebhook.backoff;
  note(`webhook.deliver: maxAttempts ${deliverWebhook.maxAttempts}, backoff ${b.kind} from ${b.baseMs} ms ×${b.factor}, jitter ${b.jitter}.`);
  note(`The partner's endpoint is down, so every attempt fails:`);
  note();

  world.partnerEndpointUp = false;
  const t0 = performance.now();
  const failedAt: number[] = [];
  const onJob = (e: JobEvent) => {
    if (e.name !== deliverWebhook.name) return;
    if (e.result === 'retry' || e.result === 'dead') failedAt.push(performance.now());
    const at = `+${((performance.now() - t0) / 1000).toFixed(2)}s`.padStart(7);
    const outcome = { retry: 'failed, retry scheduled', dead: 'failed, moved to the dead-letter queue', completed: 'completed', stale: 'stale answer refused', unknown: 'answered, outcome unknown' }[e.result];
    note(`${at}  job ${e.id} attempt ${e.attempt}: ${outcome}`);
  };
  worker.on('job', onJob);
  try {
    const id = await sluice.enqueue(deliverWebhook, { url: 'https://partner.example/hooks', event: 'order.paid' });
    await waitForState(sluice, id, 'dead');
    const gaps = failedAt.slice(1).map((t, i) => `${Math.round(t - failedAt[i]!)} ms`);
    note(`Gaps between attempts: ${gaps.join(', ')}; the backoff doubles each time.`);
    note();

    note('Its record in the dead-letter queue keeps every attempt\'s error:');
    await showQuery(
      pool,
      `select d.id, d.reason, e->>'attempt' as attempt, (e->>'at')::timestamptz as failed_at, e->>'message' as error
from sluice.dead_jobs d cross join jsonb_array_elements(d.errors) e
where d.id = ${id} order by (e->>'attempt')::int`,
    );

    world.partnerEndpointUp = true;
    note('The partner fixes the endpoint. Replay the job from the dead-letter queue:');
    const replayed = await sluice.replayDead([id]);
    note(`sluice.replayDead([${id}]) → [${replayed.join(', ')}]`);
    const done = await waitForState(sluice, id, 'completed');
    note(`job ${id} is ${done.state} on attempt ${done.attempt} of a fresh budget; its ${done.errors.length} earlier errors stay on the record.`);
  } finally {
    worker.off('job', onJob);
  }
  note();

  note('An error no retry can fix: the handler throws PermanentError.');
  const chargeId = await sluice.enqueue(chargeCard, { orderId: 2, cardLast4: '4242', expires: '2021-09' });
  const dead = await waitForState(sluice, chargeId, 'dead');
  note(`job ${chargeId} (payment.charge, maxAttempts ${chargeCard.maxAttempts}) is ${dead.state} after attempt ${dead.attempt}: ${dead.errors.at(-1)?.name}: ${dead.errors.at(-1)?.message}`);
}
