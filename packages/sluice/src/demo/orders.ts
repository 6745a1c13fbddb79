// The application's own table. It lives outside the sluice schema, as a
// user's tables do; the point of the demo is that its rows and sluice's jobs
// share one transaction.
import { integer, pgTable, serial, text, timestamp } from 'drizzle-orm/pg-core';

export const ORDERS_DDL = `create table orders (
  id serial primary key,
  customer text not null,
  email text not null,
  total_cents integer not null,
  created_at timestamptz not null default now()
)`;

export const orders = pgTable('orders', {
  id: serial('id').primaryKey(),
  customer: text('customer').notNull(),
  email: text('email').notNull(),
  totalCents: integer('total_cents').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
