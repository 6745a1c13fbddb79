// sluice.queue_configure called from SQL keeps its contract: a bad value
// raises 22023 naming the setting and changes nothing; the values it takes are
// the ones queues.configure() takes (queueSettingsSchema in config.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sluice } from '../packages/sluice/src/index.js';
import { createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;
let sluice: Sluice;

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
});
afterAll(async () => {
  await sluice.close();
  await db.drop();
});

const queueRow = async (name: string) => (await db.pool.query('SELECT * FROM sluice.queues WHERE name = $1', [name])).rows[0];
const configure = (name: string, settings: unknown) => db.pool.query(`SELECT sluice.queue_configure($1, $2::jsonb)`, [name, JSON.stringify(settings)]);

describe('sluice.queue_configure refuses a bad value with 22023 naming the setting, changing nothing', () => {
  it.each([
    ['alert_max_error_rate', 5],
    ['alert_max_error_rate', -0.5],
    ['alert_max_error_rate', 1e-9],
    ['retention_ms', -5],
    ['retention_ms', 3_155_760_000_001],
    ['retention_ms', null],
    ['alert_max_depth', -1],
    ['alert_max_depth', 2_000_000_001],
    ['alert_max_wait_ms', 0],
    ['concurrency', 0],
    ['concurrency', 1_000_001],
    ['concurrency', 2.5],
    ['concurrency', 'lots'],
    ['concurrency', true],
    ['group_concurrency', 0],
    ['max_depth', 0],
    ['weight', 0],
    ['weight', null],
    ['aging_after_ms', 2_147_483_648],
    ['unique_window_ms', { ms: 5 }],
    ['overflow', 'drop_all'],
    ['overflow', null],
    ['paused', 'yes'],
    ['paused', null],
    ['keep_history', 1],
    ['alert_no_worker', null],
  ])('%s: %j', async (key, value) => {
    await db.pool.query(`INSERT INTO sluice.queues (name, concurrency) VALUES ('qc.bad', 3) ON CONFLICT DO NOTHING`);
    const before = await queueRow('qc.bad');
    await expect(configure('qc.bad', { [key]: value })).rejects.toMatchObject({ code: '22023', message: expect.stringContaining(key) });
    expect(await queueRow('qc.bad')).toEqual(before);
  });

  it('half a rate limit, or one with a null half, is refused; a queue is not created by a refused call', async () => {
    for (const settings of [{ rate_limit_count: 5 }, { rate_limit_interval_ms: 1000 }, { rate_limit_count: 5, rate_limit_interval_ms: null }]) {
      await expect(configure('qc.none', settings)).rejects.toMatchObject({ code: '22023', message: expect.stringContaining('rate_limit_count') });
    }
    for (const settings of [null, [], 'x']) {
      await expect(configure('qc.none', settings)).rejects.toMatchObject({ code: '22023' });
    }
    expect(await queueRow('qc.none')).toBeUndefined();
  });

  it('one bad key among good ones changes none of them', async () => {
    await configure('qc.mixed', { weight: 2 });
    await expect(configure('qc.mixed', { weight: 5, paused: true, alert_max_depth: -1 })).rejects.toMatchObject({ code: '22023' });
    expect(await queueRow('qc.mixed')).toMatchObject({ weight: 2, paused: false, alert_max_depth: null });
  });
});

describe('sluice.queue_configure takes what queues.configure() takes', () => {
  it('the bounds of each range, whole numbers written as 5.0, and null clearing a limit', async () => {
    await configure('qc.ok', {
      concurrency: 1_000_000,
      group_concurrency: 1,
      rate_limit_count: 1_000_000_000,
      rate_limit_interval_ms: 2_147_483_647,
      max_depth: 2_000_000_000,
      overflow: 'drop_oldest',
      weight: 1_000_000,
      retention_ms: 3_155_760_000_000,
      alert_max_error_rate: 0.000001,
      alert_no_worker: true,
    });
    await db.pool.query(`SELECT sluice.queue_configure('qc.ok', '{"alert_max_wait_ms": 5.0, "aging_after_ms": 1e3}')`);
    expect(await queueRow('qc.ok')).toMatchObject({
      concurrency: 1_000_000,
      rate_limit_count: 1_000_000_000,
      max_depth: 2_000_000_000,
      retention_ms: '3155760000000',
      alert_max_wait_ms: 5,
      aging_after_ms: 1000,
      alert_no_worker: true,
    });
    await configure('qc.ok', { concurrency: null, rate_limit_count: null, rate_limit_interval_ms: null, alert_max_error_rate: 0, retention_ms: 0 });
    expect(await queueRow('qc.ok')).toMatchObject({ concurrency: null, rate_limit_count: null, rate_limit_interval_ms: null, alert_max_error_rate: 0, retention_ms: '0' });
  });

  it('every setting queues.configure() writes at its limits is accepted', async () => {
    await sluice.queues.configure('qc.ts', {
      paused: true,
      concurrency: 1,
      groupConcurrency: 1_000_000,
      rateLimit: { count: 1, intervalMs: 1 },
      maxDepth: 1,
      overflow: 'block',
      weight: 1,
      agingAfterMs: 2_147_483_647,
      uniqueWindowMs: 1,
      keepHistory: false,
      retentionMs: 0,
      alertMaxDepth: 2_000_000_000,
      alertMaxWaitMs: 2_147_483_647,
      alertMaxErrorRate: 1,
      alertNoWorker: false,
    });
    await sluice.queues.configure('qc.ts', { rateLimit: null, maxDepth: null, alertMaxErrorRate: null });
    expect(await queueRow('qc.ts')).toMatchObject({ paused: true, rate_limit_count: null, max_depth: null, alert_max_error_rate: null, unique_window_ms: 1 });
  });
});
