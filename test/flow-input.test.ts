// flow(): a step list that is malformed, or that cannot be written, is refused
// with a named error and writes nothing, also inside the caller's
// transaction, which the caller can then go on with and commit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { QueueFullError, Sluice, ValidationError, defineJob, type FlowStep } from '../packages/sluice/src/index.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';
import { rejections, validation } from './helpers/rejects.js';

let db: TestDb;
let sluice: Sluice;
const { snapshot, expectRejected } = rejections(() => db.pool);

const step = defineJob({ name: 'flow-input.step', queue: 'flow-input', schema: z.object({ k: z.string() }) });

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query('CREATE TABLE flow_input_orders (id int PRIMARY KEY)');
});

afterAll(async () => {
  await sluice?.close();
  await db?.drop();
});

/**
 * Runs the flow in a transaction of the caller's that also writes an order,
 * catches the flow's error, commits, and returns the error. The order's
 * commit shows the transaction was still usable.
 */
async function refusedInCallerTx(steps: FlowStep[], orderId: number): Promise<unknown> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO flow_input_orders VALUES ($1)', [orderId]);
    const err = await sluice.flow(steps, { tx: client }).then(
      () => 'the flow was written',
      (e: unknown) => e,
    );
    await client.query('COMMIT');
    return err;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  } finally {
    client.release();
  }
}

describe("a flow refused inside the caller's transaction writes nothing, and the transaction goes on", () => {
  it('a later step into a full queue with overflow block (QueueFullError)', async () => {
    const blocked = defineJob({ name: 'flow-input.blocked', queue: 'flow-input-block', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('flow-input-block', { maxDepth: 1, overflow: 'block' });
    await sluice.enqueue(blocked, { k: 'filler' });
    const before = await snapshot();
    const err = await refusedInCallerTx(
      [
        { key: 'one', job: step, payload: { k: 'blk.one' } },
        { key: 'two', job: blocked, payload: { k: 'blk.two' }, after: ['one'], options: { blockTimeoutMs: 0 } },
      ],
      1,
    );
    expect(err).toBeInstanceOf(QueueFullError);
    expect(await snapshot()).toEqual(before);
    expect(await count(db.pool, 'SELECT count(*) n FROM flow_input_orders WHERE id = 1')).toBe(1);
  });

  it('a later step into a full queue with overflow reject (an error of the SQL statement)', async () => {
    const rejected = defineJob({ name: 'flow-input.rejected', queue: 'flow-input-reject', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('flow-input-reject', { maxDepth: 1, overflow: 'reject' });
    await sluice.enqueue(rejected, { k: 'filler' });
    const before = await snapshot();
    const err = await refusedInCallerTx(
      [
        { key: 'one', job: step, payload: { k: 'rej.one' } },
        { key: 'two', job: rejected, payload: { k: 'rej.two' }, after: ['one'] },
      ],
      2,
    );
    expect(err).toBeInstanceOf(QueueFullError);
    expect(await snapshot()).toEqual(before);
    expect(await count(db.pool, 'SELECT count(*) n FROM flow_input_orders WHERE id = 2')).toBe(1);
  });

  it('a step after more than 1000 parents (ValidationError naming its after)', async () => {
    const before = await snapshot();
    const err = await refusedInCallerTx(
      [
        { key: 'a', job: step, payload: { k: 'val.a' } },
        { key: 'b', job: step, payload: { k: 'val.b' }, after: Array<string>(1001).fill('a') },
      ],
      3,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('steps.1.after');
    expect(await snapshot()).toEqual(before);
    expect(await count(db.pool, 'SELECT count(*) n FROM flow_input_orders WHERE id = 3')).toBe(1);
  });
});

describe('a flow given a connection that is in no transaction', () => {
  it('is written in a transaction of its own: a later step refused leaves nothing of it', async () => {
    const rejected = defineJob({ name: 'flow-input.rejected2', queue: 'flow-input-reject2', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('flow-input-reject2', { maxDepth: 1, overflow: 'reject' });
    await sluice.enqueue(rejected, { k: 'filler' });
    const before = await snapshot();
    const client = await db.pool.connect();
    try {
      const err = await sluice
        .flow([{ key: 'one', job: step, payload: { k: 'auto.one' } }, { key: 'two', job: rejected, payload: { k: 'auto.two' }, after: ['one'] }], { tx: client })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueFullError);
    } finally {
      client.release();
    }
    expect(await snapshot()).toEqual(before);
  });

  it('commits what it wrote', async () => {
    const client = await db.pool.connect();
    try {
      const ids = await sluice.flow([{ key: 'one', job: step, payload: { k: 'auto.ok' } }], { tx: client });
      expect((await sluice.getJob(ids.one)).state).toBe('available');
    } finally {
      client.release();
    }
  });
});

describe('bounded queues', () => {
  it('more steps in a block queue than its maxDepth is a QueueFullError at once, not after blockTimeoutMs', async () => {
    const small = defineJob({ name: 'flow-input.small', queue: 'flow-input-small', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('flow-input-small', { maxDepth: 2, overflow: 'block' });
    const started = performance.now();
    await expectRejected(
      () =>
        sluice.flow([
          { key: 'a', job: small, payload: { k: 'sm.a' } },
          { key: 'b', job: small, payload: { k: 'sm.b' }, after: ['a'] },
          { key: 'c', job: small, payload: { k: 'sm.c' }, after: ['b'], options: { blockTimeoutMs: 5_000 } },
        ]),
      { cls: QueueFullError, name: 'QueueFullError', mentions: 'flow-input-small' },
    );
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('as many steps as maxDepth still fit', async () => {
    const fits = defineJob({ name: 'flow-input.fits', queue: 'flow-input-fits', schema: z.object({ k: z.string() }) });
    await sluice.queues.configure('flow-input-fits', { maxDepth: 2, overflow: 'block' });
    const ids = await sluice.flow([
      { key: 'a', job: fits, payload: { k: 'fit.a' } },
      { key: 'b', job: fits, payload: { k: 'fit.b' }, after: ['a'] },
    ]);
    expect(Object.keys(ids).sort()).toEqual(['a', 'b']);
  });
});

describe('the shape of each step', () => {
  it('an unknown step key (a typo of `after`) is refused, naming it and its step', async () => {
    await expectRejected(
      () => sluice.flow([{ key: 'a', job: step, payload: { k: 'a' } }, { key: 'b', job: step, payload: { k: 'b' }, afer: ['a'] } as never]),
      validation('steps.1', { mentions: 'afer' }),
    );
  });

  it('an after that is not an array of keys is refused', async () => {
    await expectRejected(
      () => sluice.flow([{ key: 'a', job: step, payload: { k: 'a' } }, { key: 'b', job: step, payload: { k: 'b' }, after: 'a' } as never]),
      validation('steps.1.after'),
    );
  });

  it('a step option dependsOn is refused, not dropped (a flow step waits for the steps in its after)', async () => {
    const parent = await sluice.enqueue(step, { k: 'parent' }, { delayMs: 3_600_000 });
    await expectRejected(
      () =>
        sluice.flow([
          { key: 'a', job: step, payload: { k: 'a' } },
          { key: 'b', job: step, payload: { k: 'b' }, after: ['a'], options: { dependsOn: [parent] } as never },
        ]),
      validation('steps.1.options', { mentions: 'dependsOn' }),
    );
  });

  it('a step option tx is refused, not ignored (the flow takes one tx for every step)', async () => {
    await expectRejected(
      () => sluice.flow([{ key: 'a', job: step, payload: { k: 'a' }, options: { tx: 42 } as never }]),
      validation('steps.0.options', { mentions: 'tx' }),
    );
  });

  it.each([
    ['steps.1.options.priority', 'priority', { priority: 'urgent' }],
    ['steps.1.options', 'delay', { delay: 5 }],
    ['steps.1.options.delayMs', 'runAt', { runAt: new Date(Date.now() + 60_000), delayMs: 1_000 }],
  ])('a bad step option is refused as %s, naming its step', async (field, mentions, options) => {
    await expectRejected(
      () => sluice.flow([{ key: 'a', job: step, payload: { k: 'a' } }, { key: 'b', job: step, payload: { k: 'b' }, after: ['a'], options: options as never }]),
      validation(field, { mentions }),
    );
  });
});
