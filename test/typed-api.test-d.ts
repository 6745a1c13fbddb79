// Type tests: compiled by `pnpm typecheck` (tsc over test/), never run. A
// line marked @ts-expect-error fails the typecheck when it compiles, so each
// one proves that the compiler refuses that call.
import { expectTypeOf } from 'vitest';
import { z } from 'zod';
import * as zm from 'zod/mini';
import { z as z3 } from 'zod3';
import { Sluice, defineJob, schedule, type JobId } from '../packages/sluice/src/index.js';

const sendEmail = defineJob({
  name: 'email.send',
  schema: z.object({ to: z.email(), template: z.string() }),
});
const resize = defineJob({
  name: 'image.resize',
  schema: z.object({ imageId: z.number(), width: z.number() }),
  result: z.object({ url: z.string(), bytes: z.number() }),
});
const tick = defineJob({ name: 'tick', schema: z.object({}) });
const miniJob = defineJob({ name: 'mini', schema: zm.object({ n: zm.number() }) });

declare const sluice: Sluice<[typeof sendEmail, typeof resize, typeof tick]>;
declare const untyped: Sluice;

export async function enqueueByName() {
  const id = await sluice.enqueue('email.send', { to: 'a@b.c', template: 'welcome' });
  expectTypeOf(id).toEqualTypeOf<JobId<unknown>>();
  // @ts-expect-error a name the client was not given
  await sluice.enqueue('email.sned', { to: 'a@b.c', template: 'welcome' });
  // @ts-expect-error the payload misses `template`
  await sluice.enqueue('email.send', { to: 'a@b.c' });
  // @ts-expect-error a field of the wrong type
  await sluice.enqueue('image.resize', { imageId: '7', width: 640 });
  // @ts-expect-error a field the schema does not have
  await sluice.enqueue('email.send', { to: 'a@b.c', template: 'welcome', cc: 'x' });
  await sluice.enqueueMany('image.resize', [{ imageId: 1, width: 640 }]);
  // @ts-expect-error one payload of many is wrong
  await sluice.enqueueMany('image.resize', [{ imageId: 1, width: 640 }, { imageId: 2 }]);
  // A client given no typed job list takes any name (checked when it runs).
  await untyped.enqueue('anything', { any: 'payload' });
}

export async function enqueueByDefinition() {
  await sluice.enqueue(miniJob, { n: 1 });
  // @ts-expect-error a zod/mini schema is typed like a classic one
  await sluice.enqueue(miniJob, { n: 'one' });
}

export async function waitForIsTypedByTheResultSchema() {
  const id = await sluice.enqueue(resize, { imageId: 1, width: 640 });
  expectTypeOf(id).toEqualTypeOf<JobId<{ url: string; bytes: number }>>();
  expectTypeOf(await sluice.waitFor(id)).toEqualTypeOf<{ url: string; bytes: number }>();
  const byName = await sluice.enqueue('image.resize', { imageId: 1, width: 640 });
  expectTypeOf(await sluice.waitFor(byName)).toEqualTypeOf<{ url: string; bytes: number }>();
  // A job without a result schema, or a plain number, gives unknown.
  expectTypeOf(await sluice.waitFor(await sluice.enqueue(tick, {}))).toEqualTypeOf<unknown>();
  expectTypeOf(await sluice.waitFor(42)).toEqualTypeOf<unknown>();
  const ids = await sluice.enqueueMany(resize, [{ imageId: 1, width: 640 }]);
  expectTypeOf(ids).toEqualTypeOf<JobId<{ url: string; bytes: number }>[]>();
}

export function handlersReturnTheirResultType() {
  resize.handle(async (p) => ({ url: `/img/${p.imageId}`, bytes: p.width }));
  // @ts-expect-error the handler returns something the result schema refuses
  resize.handle(async () => ({ url: 42 }));
  sendEmail.handle(async (p) => {
    expectTypeOf(p).toEqualTypeOf<{ to: string; template: string }>();
  });
}

export async function flowIsTypedByStep() {
  const ids = await sluice.flow([
    { key: 'fetch', job: sendEmail, payload: { to: 'a@b.c', template: 't' } },
    { key: 'resize', job: 'image.resize', payload: { imageId: 1, width: 2 }, after: ['fetch'] },
  ]);
  expectTypeOf(ids).toEqualTypeOf<{ fetch: JobId<unknown>; resize: JobId<{ url: string; bytes: number }> }>();
  expectTypeOf(await sluice.waitFor(ids.resize)).toEqualTypeOf<{ url: string; bytes: number }>();
  // @ts-expect-error the flow has no step "notify"
  void ids.notify;
  await sluice.flow([
    // @ts-expect-error a step's payload is checked against its job's schema
    { key: 'a', job: resize, payload: { imageId: 'one', width: 2 } },
  ]);
  await sluice.flow([
    { key: 'a', job: tick, payload: {} },
    // @ts-expect-error `after` names a key that is not a step
    { key: 'b', job: tick, payload: {}, after: ['c'] },
  ]);
  await sluice.flow([
    // @ts-expect-error a job name the client was not given
    { key: 'a', job: 'nope', payload: {} },
  ]);
}

export function schedulesCheckTheirPayload() {
  schedule({ name: 'resize-nightly', cron: '0 3 * * *', job: resize, payload: { imageId: 1, width: 64 } });
  schedule({ name: 'tick', cron: '* * * * *', job: tick }); // {} is a valid payload: it may be left out
  // @ts-expect-error the payload does not match the job's schema
  schedule({ name: 'resize-bad', cron: '0 3 * * *', job: resize, payload: { imageId: 'x', width: 64 } });
  // @ts-expect-error the job's schema needs a payload
  schedule({ name: 'resize-none', cron: '0 3 * * *', job: resize });
  schedule({ name: 'by-name', cron: '0 3 * * *', job: 'image.resize', payload: { anything: true } });
}

export function zod3SchemasAreRefused() {
  // @ts-expect-error a zod 3 schema: the error names the zod sluice needs
  defineJob({ name: 'old', schema: z3.object({ to: z3.string() }) });
}
