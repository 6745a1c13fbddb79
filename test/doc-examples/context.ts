// What the examples in README.md and docs/ take as given: the application's
// jobs, pool, client, transaction and the odds and ends of its own code. The
// examples themselves are compiled as written against these (see
// test/doc-examples.test.ts); the SQL examples enqueue the jobs by name.
import pg from 'pg';
import { z } from 'zod';
import { integer, pgTable, serial, text } from 'drizzle-orm/pg-core';
import type { createDashboard } from '../../packages/dashboard/src/index.js';
import {
  QueueFullError as QueueFullErrorClass,
  Sluice as SluiceClass,
  createWorker as createWorkerFn,
  defineJob,
  type Executor,
  type JobId,
  type JobPayload,
  type JobRegistration,
  type Middleware,
  type Worker,
} from '../../packages/sluice/src/index.js';

export const orders = pgTable('orders', { id: serial('id').primaryKey(), email: text('email').notNull(), totalCents: integer('total_cents').notNull() });

export const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });

export const sendEmail = defineJob({
  name: 'email.send',
  queue: 'email',
  schema: z.object({ to: z.email(), template: z.string(), orderId: z.number().int() }),
  maxAttempts: 10,
  timeoutMs: 30_000,
  priority: 0,
});
const imageSchema = z.object({ imageId: z.number().int(), width: z.number().int() });
export const resizeImage = defineJob({ name: 'image.resize', queue: 'images', schema: imageSchema, result: z.object({ url: z.string() }) });
export const resize = resizeImage;
export const buildReport = defineJob({ name: 'report.build', queue: 'reports', schema: z.object({ kind: z.string() }) });
const orderSchema = z.object({ id: z.number().int(), email: z.email() });
export const sendReceipt = defineJob({ name: 'order.receipt', schema: orderSchema });
export const trackOrder = defineJob({ name: 'order.track', schema: orderSchema });
export const chargeCard = defineJob({ name: 'card.charge', schema: z.object({ cardId: z.string(), last4: z.string() }) });
const noPayload = (name: string) => defineJob({ name, schema: z.object({}) });
export const ping = noPayload('ping');
export const digest = defineJob({ name: 'digest', schema: z.object({ id: z.number().int().optional() }) });
export const cleanup = noPayload('cleanup');
export const fetchData = noPayload('flow.fetch');
export const transform = noPayload('flow.transform');
export const index = noPayload('flow.index');
export const notify = noPayload('flow.notify');
export const batchDone = noPayload('album.done');
export const albumReady = noPayload('album.ready');
export const extract = noPayload('etl.extract');
export const transformA = noPayload('etl.transform-a');
export const transformB = noPayload('etl.transform-b');
export const load = noPayload('etl.load');
const byId = (name: string) => defineJob({ name, schema: z.object({ id: z.number().int() }) });
export const report = byId('wf.report');
export const sync = byId('wf.sync');
export const thumb = byId('wf.thumb');
export const welcome = byId('wf.welcome');
export const download = byId('wf.download');
export const parse = byId('wf.parse');
export const ingest = byId('wf.ingest');

/** Every job the examples name, for the SQL examples too (they enqueue by name). */
export const exampleJobs = [sendEmail, resizeImage, buildReport, sendReceipt, trackOrder, chargeCard];

export const sluice = new SluiceClass({ pool, jobs: [sendEmail, resizeImage, buildReport] });
export const Sluice = SluiceClass;
export const createWorker = createWorkerFn;
export const QueueFullError = QueueFullErrorClass;

// The application's own values and helpers, as the examples use them.
export declare const tx: Executor;
export declare const handlers: JobRegistration[];
export declare const worker: Worker;
export declare const dashboard: ReturnType<typeof createDashboard>;
export declare const id: JobId<{ url: string }>;
export declare const id1: number;
export declare const id2: number;
export declare const resizeId: JobId<{ url: string }>;
export declare const payload: JobPayload<typeof sendEmail>;
export declare const p: { id: number };
export declare const q: { id: number };
export declare const order: z.input<typeof orderSchema>;
export declare const images: { id: number }[];
export declare const items: z.input<typeof imageSchema>[];
export declare const photos: z.input<typeof imageSchema>[];
export declare const albumId: string;
export declare const tenantId: string;
export declare const userId: string;
export declare const day: string;
export declare const schema: z.ZodType;
export declare const withTracing: Middleware;
export declare const mailer: {
  send(to: string, template: string, options: { signal: AbortSignal }): Promise<void>;
  receipt(order: z.output<typeof orderSchema>): Promise<void>;
};
export declare const analytics: { track(order: z.output<typeof orderSchema>): Promise<void> };
export declare const metrics: { observe(job: string, ms: number): void };
export declare const pager: { notify(subject: string, message: string): void };
export declare function thumbnail(imageId: number, width: number): Promise<string>;
export declare function cardExpired(charge: { last4: string }): boolean;
export declare const PGBOUNCER_URL: string;
export declare const DIRECT_URL: string;
