// Section 4: an enqueue straight from SQL, then the SQL an operator runs
// when something looks wrong.
import type { DemoContext } from './context.js';
import { heading, note, showQuery } from './output.js';

export async function showInspection({ pool }: DemoContext): Promise<void> {
  heading('4. SQL is the API too: enqueue and inspect');
  note('Enqueue from psql, a trigger or another language. The job takes the queue and');
  note('retry policy its TypeScript definition registered in sluice.job_types:');
  const { rows } = await showQuery(
    pool,
    `select sluice.enqueue('email.send', '{"to":"a@b.c"}', run_at => now() + interval '5 min')`,
  );
  await showQuery(
    pool,
    `select id, queue, name, state, payload, max_attempts, round(extract(epoch from run_at - now())) as starts_in_s
from sluice.jobs where id = ${Number(rows[0]!.enqueue)}`,
  );

  note('Per queue: waiting, running and dead jobs, and how long the oldest has waited:');
  await showQuery(pool, `select * from sluice.queue_stats`);

  note('Live and dead jobs by queue, name and state (finished ones are in job_history):');
  await showQuery(pool, `select * from sluice.job_counts`);

  note("The dead-letter queue, with each job's last error:");
  await showQuery(
    pool,
    `select id, queue, name, reason, attempt, jsonb_array_length(errors) as errors,
       errors->-1->>'message' as last_error, died_at
from sluice.dead_jobs order by died_at desc`,
  );

  note('Recently finished jobs:');
  await showQuery(
    pool,
    `select id, queue, name, state, attempt, finished_at
from sluice.job_history order by finished_at desc, id desc limit 5`,
  );
}
