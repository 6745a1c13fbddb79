// Section 1: an order row and its confirmation job commit together, through a
// plain pg client and through drizzle, and a rolled-back order leaves no job.
import { JobNotFoundError } from '../index.js';
import type { DemoContext } from './context.js';
import { sendEmail } from './jobs.js';
import { ORDERS_DDL, orders } from './orders.js';
import { heading, note, showQuery } from './output.js';
import { waitUntil } from './wait.js';

export async function showTransactions({ pool, db, sluice, worker, world }: DemoContext): Promise<void> {
  heading('1. An order and its confirmation email commit together');
  note('The application has its own table:');
  note(ORDERS_DDL);
  await pool.query(ORDERS_DDL);
  note();

  // Plain pg: the job is written on the client that holds the transaction.
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: number }>(
      `insert into orders (customer, email, total_cents) values ($1, $2, $3) returning id`,
      ['Ada Lovelace', 'ada@example.com', 4_200],
    );
    const orderId = rows[0]!.id;
    const jobId = await sluice.enqueue(sendEmail, { to: 'ada@example.com', template: 'order-confirmation', orderId }, { tx: client });
    await client.query('COMMIT');
    note(`pg client   BEGIN · insert order ${orderId} · sluice.enqueue(sendEmail, …, { tx: client }) → job ${jobId} · COMMIT`);
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }

  // drizzle: the same, with the drizzle transaction object as `tx`.
  const committed = await db.transaction(async (tx) => {
    const [order] = await tx
      .insert(orders)
      .values({ customer: 'Grace Hopper', email: 'grace@example.com', totalCents: 1_999 })
      .returning({ id: orders.id });
    const jobId = await sluice.enqueue(sendEmail, { to: 'grace@example.com', template: 'order-confirmation', orderId: order!.id }, { tx });
    return { orderId: order!.id, jobId };
  });
  note(`drizzle     db.transaction(tx => insert order ${committed.orderId} · sluice.enqueue(…, { tx }) → job ${committed.jobId}) · committed`);

  // A payment check fails after the order and its job were written: both go.
  const doomed = await pool.connect();
  let doomedJobId = 0;
  let doomedOrderId = 0;
  try {
    await doomed.query('BEGIN');
    const { rows } = await doomed.query<{ id: number }>(
      `insert into orders (customer, email, total_cents) values ($1, $2, $3) returning id`,
      ['Charles Babbage', 'charles@example.com', 99_900],
    );
    doomedOrderId = rows[0]!.id;
    doomedJobId = await sluice.enqueue(sendEmail, { to: 'charles@example.com', template: 'order-confirmation', orderId: doomedOrderId }, { tx: doomed });
  } finally {
    await doomed.query('ROLLBACK');
    doomed.release();
  }
  note(`rolled back BEGIN · insert order ${doomedOrderId} · sluice.enqueue(…, { tx: client }) → job ${doomedJobId} · ROLLBACK (payment declined)`);
  note();

  note('Orders and their jobs, as another connection sees them:');
  await showQuery(
    pool,
    `select o.id as order_id, o.customer, j.id as job_id, j.name, j.state
from orders o left join sluice.jobs j on j.name = 'email.send' and (j.payload->>'orderId')::int = o.id
order by o.id`,
  );
  note(`Proof that the rolled-back job ${doomedJobId} never existed:`);
  await showQuery(
    pool,
    `select (select count(*) from orders where id = ${doomedOrderId}) as orders,
       (select count(*) from sluice.jobs where id = ${doomedJobId}) as live_jobs,
       (select count(*) from sluice.job_history where id = ${doomedJobId}) as finished_jobs,
       (select count(*) from sluice.dead_jobs where id = ${doomedJobId}) as dead_jobs`,
  );
  try {
    await sluice.getJob(doomedJobId);
    throw new Error(`job ${doomedJobId} was rolled back but getJob found it`);
  } catch (err) {
    if (!(err instanceof JobNotFoundError)) throw err;
    note(`sluice.getJob(${doomedJobId}) → ${err.name}: ${err.message}`);
  }
  note();

  await worker.start();
  note(`A worker starts (createWorker: concurrency ${worker.concurrency}, queues ${worker.queues.join(', ')}) and sends the confirmations:`);
  await waitUntil(() => world.outbox.length >= 2, 'two confirmation emails');
  for (const email of world.outbox) note(`  ✉  ${email.template} for order ${email.orderId} → ${email.to}`);
}
