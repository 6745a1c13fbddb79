// The demo's jobs and their handlers. Handlers act on a small in-memory
// "world" (an outbox, a partner endpoint that can be down) so each section
// can show what the handlers did and flip a failure on or off.
import { z } from 'zod';
import { PermanentError, defineJob, type JobRegistration } from '../index.js';

export const sendEmail = defineJob({
  name: 'email.send',
  queue: 'email',
  schema: z.object({
    // Loose on purpose: the SQL example enqueues "a@b.c", which stricter
    // validators reject for its one-letter top-level domain.
    to: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an email address'),
    template: z.string().default('plain'),
    orderId: z.number().int().positive().optional(),
  }),
});

export const resizeImage = defineJob({
  name: 'image.resize',
  queue: 'images',
  schema: z.object({ imageId: z.number().int(), width: z.number().int().positive() }),
});

// A short backoff so the demo shows four attempts in about a second and a half.
export const deliverWebhook = defineJob({
  name: 'webhook.deliver',
  queue: 'webhooks',
  schema: z.object({ url: z.url(), event: z.string() }),
  maxAttempts: 4,
  backoff: { kind: 'exponential', baseMs: 200, factor: 2, jitter: 0 },
});

export const chargeCard = defineJob({
  name: 'payment.charge',
  queue: 'payments',
  schema: z.object({ orderId: z.number().int(), cardLast4: z.string().length(4), expires: z.string() }),
});

export interface DemoWorld {
  outbox: { to: string; template: string; orderId?: number }[];
  imagesResized: number;
  partnerEndpointUp: boolean;
}

export function createWorld(): DemoWorld {
  return { outbox: [], imagesResized: 0, partnerEndpointUp: true };
}

export function demoHandlers(world: DemoWorld): JobRegistration[] {
  return [
    sendEmail.handle(async (email) => {
      world.outbox.push(email);
    }),
    resizeImage.handle(async () => {
      world.imagesResized++;
    }),
    deliverWebhook.handle(async (hook) => {
      if (!world.partnerEndpointUp) throw new Error(`POST ${hook.url}: 503 Service Unavailable`);
    }),
    chargeCard.handle(async (charge) => {
      // Retrying cannot fix an expired card: fail once, straight to the dead-letter queue.
      if (charge.expires < new Date().toISOString().slice(0, 7)) {
        throw new PermanentError(`card ending ${charge.cardLast4} expired ${charge.expires}`);
      }
    }),
  ];
}
