import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { z } from 'zod';
import {
  Sluice,
  ValidationError,
  ScheduleNotFoundError,
  createWorker,
  daily,
  defineJob,
  schedule,
  weekly,
  type ScheduleDefinition,
  type Worker,
} from '../packages/sluice/src/index.js';
import { dueFireTimes, nextFireAfter } from '../packages/sluice/src/schedule.js';
import { cronNextDueInMs, cronRedeclare, cronRemoveUndeclared, declaredSchedule } from '../packages/sluice/src/sql/cron.js';
import { Rescuer } from '../packages/sluice/src/services/rescuer.js';
import { declareSchedules, registerWorker } from '../packages/sluice/src/worker/declarations.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';
import { Sessions, lockWait } from './helpers/sessions.js';

let db: TestDb;
let sluice: Sluice;
const workers: Worker[] = [];

const report = defineJob({ name: 'report.build', queue: 'reports', schema: z.object({ kind: z.string() }) });
const idle = defineJob({ name: 'idle', queue: 'idle', schema: z.object({}) });

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  await db.pool.query('DELETE FROM sluice.cron_schedules; DELETE FROM sluice.jobs; DELETE FROM sluice.job_history');
});
const sessions = new Sessions(() => db.url);

afterAll(async () => {
  await sessions.end();
  await db.drop();
});

/** A worker that schedules but claims only the `idle` queue, so fired jobs stay countable in sluice.jobs. */
function schedulerOnly(extra: Partial<Parameters<typeof createWorker>[0]> = {}): Worker {
  const w = createWorker({ connectionString: db.url, pollIntervalMs: 200, handlers: [idle.handle(() => {})], ...extra });
  workers.push(w);
  return w;
}

/** The leader's rescuer as duties.ts makes it, rounds every 20 ms; tests shorten its reap interval where they need a reap. */
const RESCUER = { intervalMs: 20, batchSize: 10, forgetAfterMs: 3_600_000, reapIntervalMs: 60_000, lostSessionGraceMs: 2_000 };

/** A worker's row as another process or version leaves it: what it declares (null: it says nothing), whether it removes, how long it has been silent. */
async function workerRow(
  q: pg.Pool | pg.ClientBase,
  w: { id: string; service: string; schedules: string[] | null; removes: boolean; silentFor?: string; definitions?: ScheduleDefinition[] },
): Promise<void> {
  await q.query(
    `INSERT INTO sluice.workers (id, service, host, pid, queues, concurrency, version, schedules, removes_undeclared_schedules, heartbeat_at,
       schedule_definitions)
     VALUES ($1, $2, 'h', 1, '{reports}', 1, 'v', $3, $4, now() - $5::interval, $6::jsonb)`,
    [w.id, w.service, w.schedules, w.removes, w.silentFor ?? '0 s', w.definitions ? JSON.stringify(w.definitions.map(declaredSchedule)) : null],
  );
}

/** A leader's rescuer, running until `until` holds. */
async function rescuerUntil(options: Partial<typeof RESCUER>, until: () => Promise<boolean>, what: string): Promise<void> {
  const rescuer = new Rescuer(db.pool, { ...RESCUER, ...options }, captureLogs('error').logger);
  rescuer.start();
  try {
    await waitUntil(until, { what });
  } finally {
    await rescuer.stop();
  }
}

const firedFor = (name: string) => count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE tags @> ARRAY[$1]`, [`cron:${name}`]);

describe('schedule definitions', () => {
  it.each([
    ['cron', { cron: '' }, 'schedule.cron'],
    ['cron', { cron: '61 * * * *' }, 'schedule.cron'],
    ['cron', { cron: '* * * *' }, 'schedule.cron'],
    ['cron', { cron: '* * * * * * *' }, 'schedule.cron'],
    ['cron', { cron: '@sometimes' }, 'schedule.cron'],
    ['timezone', { timezone: 'Mars/Olympus' }, 'schedule.timezone'],
    ['misfire', { misfire: 'always' }, 'schedule.misfire'],
    ['name', { name: 'has space' }, 'schedule.name'],
    ['payload', { payload: { kind: 42 } }, 'schedule.payload.kind'],
    ['runAllCap', { runAllCap: 0 }, 'schedule.runAllCap'],
  ])('a bad %s is a ValidationError naming the field, and nothing is written', async (_what, bad, field) => {
    const options = { name: 'nightly', cron: '0 3 * * *', job: report, payload: { kind: 'daily' }, ...bad } as never;
    let error: unknown;
    try {
      await sluice.schedules.add(options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.cron_schedules')).toBe(0);
  });

  it('accepts 5 and 6 fields and presets', () => {
    expect(schedule({ name: 'a', cron: '*/5 * * * *', job: 'x' }).cron).toBe('*/5 * * * *');
    expect(schedule({ name: 'b', cron: '*/10 * * * * *', job: 'x' }).cron).toBe('*/10 * * * * *');
    expect(schedule({ name: 'c', cron: '@hourly', job: 'x' }).cron).toBe('@hourly');
  });

  it('daily and weekly compile to cron and reject bad input', () => {
    expect(daily('09:30')).toBe('30 9 * * *');
    expect(daily('00:00')).toBe('0 0 * * *');
    expect(weekly('monday', '08:05')).toBe('5 8 * * 1');
    expect(weekly('sunday', '23:59')).toBe('59 23 * * 0');
    expect(() => daily('24:00')).toThrow(ValidationError);
    expect(() => daily('9:5')).toThrow(/daily.at/);
    expect(() => weekly('funday' as never, '10:00')).toThrow(/weekly.on/);
  });
});

describe('time zones and DST (Europe/Berlin, 2026)', () => {
  const tz = 'Europe/Berlin';
  it('spring forward: 02:30 does not exist on 29 March; the daily job fires once that day, at 03:30 local', () => {
    const fires = dueFireTimes('30 2 * * *', tz, new Date('2026-03-28T01:30:00Z'), new Date('2026-03-30T23:59:59Z'), 10).due;
    expect(fires.map((d) => d.toISOString())).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:30:00.000Z', // 03:30 CEST: the gap's time shifted forward, once
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('fall back: 02:30 happens twice on 25 October; the daily job fires once', () => {
    const fires = dueFireTimes('30 2 * * *', tz, new Date('2026-10-24T00:30:00Z'), new Date('2026-10-26T23:59:59Z'), 10).due;
    expect(fires.map((d) => d.toISOString())).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z', // the first 02:30 (CEST) only
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('fall back: firing the first 02:30 moves next_run_at past the second, however late the scheduler fires it', () => {
    for (const now of ['2026-10-25T00:30:00.005Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.005Z']) {
      const { due, next } = dueFireTimes('30 2 * * *', tz, new Date('2026-10-25T00:30:00Z'), new Date(now), 1);
      expect({ due: due.map((d) => d.toISOString()), next: next.toISOString() }, now).toEqual({
        due: ['2026-10-25T00:30:00.000Z'],
        next: '2026-10-26T01:30:00.000Z',
      });
    }
  });

  // cron-parser walking back answers both passes of a repeated 02:30 where
  // stepping forward answers the first only: a catch-up that started from
  // the fire so many steps back began one fire too late, and lost the
  // fall-back day's run (run_once) or the oldest fire in the window (run_all).
  it('fall back: a catch-up over the repeated hour keeps the day\'s run, run_once and run_all at the cap', () => {
    const iso = (d: { due: Date[]; next: Date }) => ({ due: d.due.map((t) => t.toISOString()), next: d.next.toISOString() });
    // Down from Saturday's fire to Sunday after the second 02:30.
    expect(iso(dueFireTimes('30 2 * * *', tz, new Date('2026-10-24T00:30:00Z'), new Date('2026-10-25T02:00:00Z'), 1))).toEqual({
      due: ['2026-10-25T00:30:00.000Z'],
      next: '2026-10-26T01:30:00.000Z',
    });
    expect(iso(dueFireTimes('30 2 * * *', tz, new Date('2026-10-20T00:30:00Z'), new Date('2026-10-26T02:00:00Z'), 3))).toEqual({
      due: ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
      next: '2026-10-27T01:30:00.000Z',
    });
    const ny = dueFireTimes('30 1 * * *', 'America/New_York', new Date('2026-10-31T05:30:00Z'), new Date('2026-11-01T07:00:00Z'), 1);
    expect(iso(ny)).toEqual({ due: ['2026-11-01T05:30:00.000Z'], next: '2026-11-02T06:30:00.000Z' });
  });

  it('fall back: a half-hourly job fires in both passes of the repeated hour', () => {
    const { due } = dueFireTimes('*/30 * * * *', tz, new Date('2026-10-25T00:00:00Z'), new Date('2026-10-25T01:30:00Z'), 10);
    // 02:00 and 02:30 CEST, then 02:00 and 02:30 CET.
    expect(due.map((d) => d.toISOString())).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z']);
  });

  // next_run_at is stored by nextFireAfter, which answers the fire a gap
  // shifted when asked the day before. Asked what was due once that time had
  // come, the scheduler walked the expression afresh from next_run_at, which
  // skips the shifted time: nothing was enqueued and the day's run was lost.
  it.each([
    { tz: 'Europe/Berlin', cron: '30 2 * * *', dayBefore: '2026-03-28T12:00:00Z', shifted: '2026-03-29T01:30:00.000Z', next: '2026-03-30T00:30:00.000Z' },
    { tz: 'America/New_York', cron: '30 2 * * *', dayBefore: '2026-03-07T12:00:00Z', shifted: '2026-03-08T07:30:00.000Z', next: '2026-03-09T06:30:00.000Z' },
    { tz: 'Europe/London', cron: '30 1 * * *', dayBefore: '2026-03-28T12:00:00Z', shifted: '2026-03-29T01:30:00.000Z', next: '2026-03-30T00:30:00.000Z' },
    { tz: 'Australia/Sydney', cron: '30 2 * * *', dayBefore: '2026-10-03T00:00:00Z', shifted: '2026-10-03T16:30:00.000Z', next: '2026-10-04T15:30:00.000Z' },
    { tz: 'America/Santiago', cron: '45 0 * * *', dayBefore: '2026-09-05T06:00:00Z', shifted: '2026-09-06T04:45:00.000Z', next: '2026-09-07T03:45:00.000Z' },
    { tz: 'America/Havana', cron: '0 0 * * *', dayBefore: '2026-03-07T06:00:00Z', shifted: '2026-03-08T05:00:00.000Z', next: '2026-03-09T04:00:00.000Z' },
  ])('spring forward in $tz: a daily $cron fires the run the gap shifted when it comes, then the next day\'s', ({ tz: zone, cron, dayBefore, shifted, next }) => {
    const fireAt = nextFireAfter(cron, zone, new Date(dayBefore));
    expect(fireAt.toISOString()).toBe(shifted);
    const due = dueFireTimes(cron, zone, fireAt, new Date(fireAt.getTime() + 5), 1);
    expect({ due: due.due.map((d) => d.toISOString()), next: due.next.toISOString() }).toEqual({ due: [shifted], next });
  });

  it('spring forward: catch-ups across the gap keep its shifted run, after a short outage and after one longer than the cap', () => {
    const iso = (d: { due: Date[]; next: Date }) => ({ due: d.due.map((t) => t.toISOString()), next: d.next.toISOString() });
    const inGap = ['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'];
    // run_all, every missed fire within the cap.
    expect(iso(dueFireTimes('30 2 * * *', tz, new Date('2026-03-27T01:30:00Z'), new Date('2026-03-30T12:00:00Z'), 10))).toEqual({
      due: ['2026-03-27T01:30:00.000Z', ...inGap],
      next: '2026-03-31T00:30:00.000Z',
    });
    // run_all down four weeks with a cap of 3: the most recent three.
    expect(iso(dueFireTimes('30 2 * * *', tz, new Date('2026-03-01T01:30:00Z'), new Date('2026-03-30T12:00:00Z'), 3))).toEqual({
      due: inGap,
      next: '2026-03-31T00:30:00.000Z',
    });
    // run_once back up just after the shifted run: that run is the latest due.
    expect(iso(dueFireTimes('30 2 * * *', tz, new Date('2026-03-01T01:30:00Z'), new Date('2026-03-29T05:00:00Z'), 1))).toEqual({
      due: ['2026-03-29T01:30:00.000Z'],
      next: '2026-03-30T00:30:00.000Z',
    });
  });

  it('the scheduler enqueues the 29 March 2026 run of an 02:30 Europe/Berlin schedule at 03:30 CEST, where the gap shifted it', async () => {
    await sluice.schedules.add({ name: 'berlin-gap', cron: '30 2 29 3 *', timezone: tz, job: report, payload: { kind: 'gap' }, misfire: 'run_all' });
    // next_run_at as the scheduler stored it after the 2025 run.
    const shifted = nextFireAfter('30 2 29 3 *', tz, new Date('2025-03-29T01:30:00Z'));
    expect(shifted.toISOString()).toBe('2026-03-29T01:30:00.000Z');
    await db.pool.query(`UPDATE sluice.cron_schedules SET next_run_at = $1 WHERE name = 'berlin-gap'`, [shifted]);
    await schedulerOnly().start();
    await waitUntil(async () => (await sluice.schedules.get('berlin-gap')).nextRunAt! > new Date(), { what: 'next_run_at advanced' });
    const { rows } = await db.pool.query<{ unique_key: string }>(`SELECT unique_key FROM sluice.jobs WHERE tags @> ARRAY['cron:berlin-gap'] ORDER BY run_at`);
    // run_all: later years' runs follow once their day has passed.
    expect(rows[0]?.unique_key).toBe('cron:berlin-gap:2026-03-29T01:30:00.000Z');
    expect(new Set(rows.map((r) => r.unique_key)).size).toBe(rows.length);
  });

  // cron-parser answers 14:00Z (not after the instant) from 14:00:00.001Z to
  // 14:29:59Z here, and throws at 14:00:00.000Z: a schedule advanced by its
  // answer never moved on and enqueued the 14:00 fire again and again.
  it('nextFireAfter is strictly after its instant across Lord Howe\'s half-hour fall-back', () => {
    const tzLh = 'Australia/Lord_Howe';
    for (const at of ['2026-04-04T14:00:00.000Z', '2026-04-04T14:00:00.001Z', '2026-04-04T14:20:00.000Z', '2026-04-04T14:29:59.000Z']) {
      expect(nextFireAfter('0 * * * *', tzLh, new Date(at)).toISOString(), at).toBe('2026-04-04T15:30:00.000Z');
    }
    const walked: string[] = [];
    let t = new Date('2026-04-04T12:30:00.000Z');
    for (let i = 0; i < 4; i++) walked.push((t = nextFireAfter('0 * * * *', tzLh, t)).toISOString());
    expect(walked).toEqual(['2026-04-04T13:00:00.000Z', '2026-04-04T14:00:00.000Z', '2026-04-04T15:30:00.000Z', '2026-04-04T16:30:00.000Z']);
    const fires = dueFireTimes('0 * * * *', tzLh, new Date('2026-04-04T13:00:00Z'), new Date('2026-04-04T17:00:00Z'), 10).due;
    expect(new Set(fires.map((d) => d.toISOString())).size).toBe(fires.length);
  });

  it('nextFireAfter reads the expression in the zone', () => {
    expect(nextFireAfter('0 9 * * *', 'America/New_York', new Date('2026-01-15T12:00:00Z')).toISOString()).toBe('2026-01-15T14:00:00.000Z');
  });
});

describe('firing', () => {
  it('a per-second schedule enqueues a job per second, each with its fire-time unique key', async () => {
    await sluice.schedules.add({ name: 'every-second', cron: '* * * * * *', job: report, payload: { kind: 'tick' } });
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await firedFor('every-second')) >= 3, { what: '3 fires' });
    const { rows } = await db.pool.query(
      `SELECT unique_key, run_at, queue, payload FROM sluice.jobs WHERE tags @> ARRAY['cron:every-second'] ORDER BY run_at`,
    );
    for (const r of rows) {
      expect(r.unique_key).toBe(`cron:every-second:${r.run_at.toISOString()}`);
      expect(r.run_at.getMilliseconds()).toBe(0);
      expect(r.payload).toEqual({ kind: 'tick' });
    }
    const seconds = rows.map((r) => r.run_at.getTime() / 1000);
    expect(new Set(seconds).size).toBe(seconds.length);
  });

  it('a due schedule held locked by another session does not make the scheduler spin, and fires once let go', async () => {
    await sluice.schedules.add({ name: 'held', cron: '* * * * * *', job: report, payload: { kind: 'held' } });
    // Another session (a frozen leader's scheduler, say) holds the row mid-fire.
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM sluice.cron_schedules WHERE name = 'held' FOR UPDATE`);
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.cron_schedules WHERE name = 'held' AND next_run_at <= now()`)) === 1, {
        what: 'the schedule due',
      });
      const w = schedulerOnly();
      await w.start();
      const xacts = () => count(db.pool, `SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`);
      const before = await xacts();
      await new Promise((r) => setTimeout(r, 3_000));
      // Looking again at once, the scheduler ran about a thousand transactions a second.
      expect((await xacts()) - before).toBeLessThan(150);
      expect(await firedFor('held')).toBe(0);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    await waitUntil(async () => (await firedFor('held')) >= 1, { what: 'a fire once the lock is let go' });
  });

  // A producer that enqueues into a bounded queue locks the queue's row until
  // its own transaction ends. The scheduler's enqueue into that queue waited
  // for it with no bound, and every other schedule's fire waited behind it.
  it("a fire into a bounded queue whose row a producer holds waits at most a moment: the other schedules fire, and it fires once the producer is done", async () => {
    const heldJob = defineJob({ name: 'cron.held', queue: 'cron-held', schema: z.object({ kind: z.string() }) });
    const freeJob = defineJob({ name: 'cron.free', queue: 'cron-free', schema: z.object({ kind: z.string() }) });
    await sluice.queues.configure('cron-held', { maxDepth: 100 });
    // Yearly, due by hand below: one fire each, whatever minute the test runs across.
    await sluice.schedules.add({ name: 'c-held', cron: '0 0 1 1 *', job: heldJob, payload: { kind: 'held' } });
    await sluice.schedules.add({ name: 'c-free', cron: '0 0 1 1 *', job: freeJob, payload: { kind: 'free' } });
    // Both due, the held queue's the older: it is fired first.
    await db.pool.query(`UPDATE sluice.cron_schedules SET next_run_at = date_trunc('minute', now()) - interval '2 minutes' WHERE name = 'c-held'`);
    await db.pool.query(`UPDATE sluice.cron_schedules SET next_run_at = date_trunc('minute', now()) - interval '1 minute' WHERE name = 'c-free'`);
    const producer = new pg.Client({ connectionString: db.url });
    await producer.connect();
    try {
      await producer.query('BEGIN');
      await producer.query(`SELECT sluice.enqueue_many('cron.held', '[{"kind":"producer"}]', queue => 'cron-held')`);
      await schedulerOnly().start();
      await waitUntil(() => firedFor('c-free'), { timeoutMs: 15_000, what: 'the other schedule fired while the producer is open' });
      expect(await firedFor('c-held')).toBe(0);
      await producer.query('ROLLBACK');
      await waitUntil(() => firedFor('c-held'), { timeoutMs: 15_000, what: 'the held schedule fired once the producer was done' });
      expect([await firedFor('c-held'), await firedFor('c-free')]).toEqual([1, 1]);
    } finally {
      await producer.end();
    }
  }, 45_000);

  async function misfired(name: string, misfire: 'skip' | 'run_once' | 'run_all', runAllCap = 100) {
    await sluice.schedules.add({ name, cron: '* * * * *', job: report, payload: { kind: misfire }, misfire, runAllCap });
    // The system was down for 10 minutes: ten fire times are due.
    await db.pool.query(
      `UPDATE sluice.cron_schedules SET next_run_at = date_trunc('minute', now()) - interval '9 minutes' WHERE name = $1`,
      [name],
    );
  }

  it('misfire skip drops the missed times and jumps to the next future one', async () => {
    await misfired('m-skip', 'skip');
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await sluice.schedules.get('m-skip')).nextRunAt! > new Date(), { what: 'advanced' });
    // Only the latest due time, if it is within the grace period, may run.
    expect(await firedFor('m-skip')).toBeLessThanOrEqual(1);
    const { rows } = await db.pool.query(`SELECT run_at FROM sluice.jobs WHERE tags @> ARRAY['cron:m-skip']`);
    for (const r of rows) expect(Date.now() - r.run_at.getTime()).toBeLessThan(61_000);
  });

  it('misfire run_once enqueues one catch-up run', async () => {
    await misfired('m-once', 'run_once');
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await sluice.schedules.get('m-once')).nextRunAt! > new Date(), { what: 'advanced' });
    expect(await firedFor('m-once')).toBe(1);
  });

  it('misfire run_all enqueues every missed time, up to the cap', async () => {
    await misfired('m-all', 'run_all');
    await misfired('m-cap', 'run_all', 4);
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await sluice.schedules.get('m-cap')).nextRunAt! > new Date() && (await sluice.schedules.get('m-all')).nextRunAt! > new Date(), { what: 'advanced' });
    expect(await firedFor('m-all')).toBeGreaterThanOrEqual(10);
    expect(await firedFor('m-cap')).toBe(4);
    const { rows } = await db.pool.query(`SELECT run_at FROM sluice.jobs WHERE tags @> ARRAY['cron:m-cap'] ORDER BY run_at`);
    // The cap keeps the most recent missed times.
    expect(Date.now() - rows.at(-1).run_at.getTime()).toBeLessThan(61_000);
  });

  // A save that worked out next_run_at before a fire and wrote it after,
  // waiting for the row the scheduler held, left next_run_at on the time
  // just fired; the unique key stops a second job only while the first lives.
  it('a fire time at or before the last one fired is not fired again, once its job has completed', async () => {
    await sluice.schedules.add({ name: 'refire', cron: '* * * * *', job: report, payload: { kind: 'r' }, misfire: 'run_once' });
    await db.pool.query(
      `UPDATE sluice.cron_schedules SET next_run_at = date_trunc('minute', now()), last_run_at = date_trunc('minute', now()) WHERE name = 'refire'`,
    );
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await sluice.schedules.get('refire')).nextRunAt! > new Date(), { what: 'advanced' });
    expect(await firedFor('refire')).toBe(0);
  });

  it('a schedule changed or enabled by plain SQL runs by its new definition from now: no wait for the old next run, no catch-up of the disabled span', async () => {
    await sluice.schedules.add({ name: 'sql-edit', cron: '0 0 1 1 *', job: report, payload: { kind: 'y' } });
    await sluice.schedules.add({ name: 'sql-enable', cron: '* * * * *', job: report, payload: { kind: 'e' }, misfire: 'run_all', runAllCap: 100 });
    // Disabled by SQL an hour ago, its next run left where it was.
    await db.pool.query(`UPDATE sluice.cron_schedules SET enabled = false, next_run_at = date_trunc('minute', now()) - interval '1 hour' WHERE name = 'sql-enable'`);
    const w = schedulerOnly();
    await w.start();
    await db.pool.query(`UPDATE sluice.cron_schedules SET cron = '* * * * * *' WHERE name = 'sql-edit'`);
    await db.pool.query(`UPDATE sluice.cron_schedules SET enabled = true WHERE name = 'sql-enable'`);
    await waitUntil(async () => (await firedFor('sql-edit')) >= 1, { timeoutMs: 5_000, what: 'the edited schedule fired' });
    await waitUntil(async () => (await sluice.schedules.get('sql-enable')).nextRunAt! > new Date(), { what: 'the enabled schedule advanced' });
    expect(await firedFor('sql-enable')).toBeLessThanOrEqual(1);
  });

  it('a schedule without a next run, held back by a failed fire, is due at its retry time, not at once', async () => {
    await sluice.schedules.add({ name: 'held-back', cron: '0 0 1 1 *', job: report, payload: { kind: 'h' } });
    await db.pool.query(`UPDATE sluice.cron_schedules SET next_run_at = NULL, retry_at = now() + interval '1 minute', fail_count = 1 WHERE name = 'held-back'`);
    const ms = await cronNextDueInMs(db.pool);
    expect(ms).toBeGreaterThan(50_000);
  });

  it('disabling stops firing at once; enabling resumes without catching up', async () => {
    await sluice.schedules.add({ name: 'toggle', cron: '* * * * * *', job: report, payload: { kind: 't' } });
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await firedFor('toggle')) >= 1, { what: 'fired' });
    await sluice.schedules.disable('toggle');
    const atDisable = await firedFor('toggle');
    await new Promise((r) => setTimeout(r, 2_200));
    expect(await firedFor('toggle')).toBeLessThanOrEqual(atDisable + 1);
    const frozen = await firedFor('toggle');
    await sluice.schedules.enable('toggle');
    const row = await sluice.schedules.get('toggle');
    expect(row.nextRunAt!.getTime()).toBeGreaterThan(Date.now() - 1_000);
    await waitUntil(async () => (await firedFor('toggle')) > frozen, { what: 'fires again' });
  });

  it('changing the expression recomputes next_run_at; an unchanged redeclaration keeps it', async () => {
    await sluice.schedules.add({ name: 'edit', cron: '0 3 * * *', job: report, payload: { kind: 'e' } });
    const first = (await sluice.schedules.get('edit')).nextRunAt!;
    await db.pool.query(`UPDATE sluice.cron_schedules SET next_run_at = next_run_at + interval '1 day', last_run_at = now() WHERE name = 'edit'`);
    await sluice.schedules.add({ name: 'edit', cron: '0 3 * * *', job: report, payload: { kind: 'e2' } });
    const kept = await sluice.schedules.get('edit');
    expect(kept.nextRunAt!.getTime()).toBe(first.getTime() + 86_400_000);
    expect(kept.lastRunAt).not.toBeNull();
    await sluice.schedules.add({ name: 'edit', cron: '0 4 * * *', job: report, payload: { kind: 'e3' } });
    const changed = await sluice.schedules.get('edit');
    expect(changed.nextRunAt!.getUTCHours()).toBe(4);
  });

  it('code schedules are upserted on worker start; ones no longer declared are reported or removed', async () => {
    const a = schedule({ name: 'code-a', cron: '0 5 * * *', job: report, payload: { kind: 'a' } });
    const b = schedule({ name: 'code-b', cron: '0 6 * * *', job: report, payload: { kind: 'b' } });
    const w1 = schedulerOnly({ schedules: [a, b] });
    await w1.start();
    expect((await sluice.schedules.list()).map((s) => [s.name, s.declaredIn])).toEqual([['code-a', 'code'], ['code-b', 'code']]);
    await w1.stop();
    workers.splice(0);
    const w2 = schedulerOnly({ schedules: [a] });
    await w2.start();
    expect((await sluice.schedules.list()).map((s) => s.name)).toEqual(['code-a', 'code-b']);
    const w3 = schedulerOnly({ schedules: [a], undeclaredSchedules: 'remove' });
    await w3.start();
    expect((await sluice.schedules.list()).map((s) => s.name)).toEqual(['code-a']);
  });

  it('schedules belong to the service that declared them: another service neither reports nor removes them', async () => {
    const nightly = schedule({ name: 'svc-nightly', cron: '0 3 * * *', job: report, payload: { kind: 'n' } });
    const hourly = schedule({ name: 'svc-hourly', cron: '0 * * * *', job: report, payload: { kind: 'h' } });
    const startService = async (service: string, schedules: ScheduleDefinition[], undeclaredSchedules: 'report' | 'remove' = 'report') => {
      const logs = captureLogs('info');
      const w = schedulerOnly({ service, schedules, undeclaredSchedules, logger: logs.logger });
      await w.start();
      await w.stop();
      workers.splice(workers.indexOf(w), 1);
      return logs.lines.filter((l) => Array.isArray(l.schedules)).map((l) => ({ msg: l.msg, schedules: l.schedules }));
    };
    expect(await startService('reports', [nightly, hourly])).toEqual([]);
    const owners = await db.pool.query(`SELECT name, service FROM sluice.cron_schedules WHERE name LIKE 'svc-%' ORDER BY name`);
    expect(owners.rows).toEqual([{ name: 'svc-hourly', service: 'reports' }, { name: 'svc-nightly', service: 'reports' }]);

    // A worker pool of another service declares no schedules: nothing to say, nothing removed.
    expect(await startService('email', [])).toEqual([]);
    expect(await startService('email', [], 'remove')).toEqual([]);
    expect((await sluice.schedules.list()).filter((s) => s.name.startsWith('svc-')).map((s) => s.name)).toEqual(['svc-hourly', 'svc-nightly']);

    // The owning service's next deploy drops one: reported, then removed.
    expect(await startService('reports', [nightly])).toEqual([
      { msg: 'schedules this service declared in code earlier are declared by none of its workers', schedules: ['svc-hourly'] },
    ]);
    expect(await startService('reports', [nightly], 'remove')).toEqual([
      { msg: 'removed schedules this service no longer declares', schedules: ['svc-hourly'] },
    ]);
    expect((await sluice.schedules.list()).filter((s) => s.name.startsWith('svc-')).map((s) => s.name)).toEqual(['svc-nightly']);

    // A service that declares another's schedule takes it over.
    expect(await startService('email', [nightly])).toEqual([]);
    expect(await startService('reports', [], 'remove')).toEqual([]);
    expect((await sluice.schedules.get('svc-nightly')).service).toBe('email');
  });

  it('in a rolling deploy, no pod removes what a live pod of the other version declares; what only the old one declared goes with its last pod', async () => {
    const kept = schedule({ name: 'roll-kept', cron: '0 3 * * *', job: report, payload: { kind: 'k' } });
    const dropped = schedule({ name: 'roll-dropped', cron: '0 4 * * *', job: report, payload: { kind: 'd' } });
    const added = schedule({ name: 'roll-added', cron: '0 5 * * *', job: report, payload: { kind: 'a' } });
    const names = async () => (await sluice.schedules.list()).filter((s) => s.name.startsWith('roll-')).map((s) => s.name);
    const pod = (schedules: ScheduleDefinition[]) => schedulerOnly({ service: 'roll', schedules, undeclaredSchedules: 'remove' });
    const stop = async (w: Worker) => {
      await w.stop();
      workers.splice(workers.indexOf(w), 1);
    };
    const old1 = pod([kept, dropped]);
    await old1.start();
    const new1 = pod([kept, added]);
    await new1.start();
    expect(await names()).toEqual(['roll-added', 'roll-dropped', 'roll-kept']);
    // An old pod restarted in the middle of the rollout, after the new one.
    const old2 = pod([kept, dropped]);
    await old2.start();
    expect(await names()).toEqual(['roll-added', 'roll-dropped', 'roll-kept']);
    await stop(old1);
    expect(await names()).toEqual(['roll-added', 'roll-dropped', 'roll-kept']);
    // The old version's last pod leaves: what only it declared goes with it.
    await stop(old2);
    expect(await names()).toEqual(['roll-added', 'roll-kept']);
    // Every pod gone (a deploy that stops them all first): no one judges, nothing goes, not
    // even a code schedule of the service that no pod declares.
    await sluice.schedules.add(schedule({ name: 'roll-orphan', cron: '0 6 * * *', job: report, payload: { kind: 'o' } }));
    await db.pool.query(`UPDATE sluice.cron_schedules SET declared_in = 'code', service = 'roll' WHERE name = 'roll-orphan'`);
    await stop(new1);
    expect(await names()).toEqual(['roll-added', 'roll-kept', 'roll-orphan']);
  });

  // Every pod writes its schedules at its start: an old pod restarted after
  // new ones put the old expression back, and it stayed after the rollout.
  it('in a rolling deploy, an old pod restarted after the new ones leaves the new definition in place once it is gone: stopped, or dead and forgotten', async () => {
    const v1 = schedule({ name: 'redeclared', cron: '0 3 * * *', job: report, payload: { kind: 'v1' } });
    const v2 = schedule({ name: 'redeclared', cron: '30 4 * * *', timezone: 'Europe/Paris', job: report, payload: { kind: 'v2' } });
    const stored = async () =>
      (await db.pool.query(`SELECT cron, timezone, payload, enabled FROM sluice.cron_schedules WHERE name = 'redeclared'`)).rows[0];
    const asV1 = { cron: '0 3 * * *', timezone: 'UTC', payload: { kind: 'v1' }, enabled: true };
    const asV2 = { cron: '30 4 * * *', timezone: 'Europe/Paris', payload: { kind: 'v2' }, enabled: true };
    const pod = (def: ScheduleDefinition) => schedulerOnly({ service: 'redeclare', schedules: [def] });
    const stop = async (w: Worker) => {
      await w.stop();
      workers.splice(workers.indexOf(w), 1);
    };
    const old1 = pod(v1);
    await old1.start();
    const new1 = pod(v2);
    await new1.start();
    expect(await stored()).toEqual(asV2);
    // Restarted mid-rollout: while it runs, the last started pod's definition holds.
    const old2 = pod(v1);
    await old2.start();
    expect(await stored()).toEqual(asV1);
    await stop(old1);
    expect(await stored()).toEqual(asV1);
    // The last pod declaring the stored definition stops: the new code's comes back.
    await stop(old2);
    expect(await stored()).toEqual(asV2);
    // The scheduler recomputes the next fire from the new expression: 04:30 in Paris.
    await waitUntil(
      async () => {
        const { rows } = await db.pool.query(`SELECT next_run_at FROM sluice.cron_schedules WHERE name = 'redeclared'`);
        const at: Date | null = rows[0].next_run_at;
        return at !== null && at.getTime() === nextFireAfter('30 4 * * *', 'Europe/Paris', new Date(at.getTime() - 86_400_000)).getTime();
      },
      { what: 'next_run_at of the new expression' },
    );
    // An old pod that started and then died: its definition stays until the leader forgets it.
    await db.pool.query(`UPDATE sluice.cron_schedules SET cron = '0 3 * * *', timezone = 'UTC', payload = '{"kind":"v1"}' WHERE name = 'redeclared'`);
    await workerRow(db.pool, { id: 'redeclare-dead', service: 'redeclare', schedules: ['redeclared'], removes: false, definitions: [v1], silentFor: '20 seconds' });
    // A leader's reap round, seen to have run by a sentinel of another service, silent for two hours, that it forgets.
    const reapRound = async () => {
      await workerRow(db.pool, { id: 'redeclare-sentinel', service: 'sentinel', schedules: [], removes: false, silentFor: '2 hours' });
      await rescuerUntil({ reapIntervalMs: 100 }, async () => (await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = 'redeclare-sentinel'`)) === 0, 'a reap round');
    };
    await reapRound();
    expect(await stored()).toEqual(asV1);
    await db.pool.query(`UPDATE sluice.workers SET heartbeat_at = now() - interval '2 hours' WHERE id = 'redeclare-dead'`);
    await reapRound();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = 'redeclare-dead'`)).toBe(0);
    expect(await stored()).toEqual(asV2);
    // An operator's edit through schedules.add makes it an operator's schedule: a pod's going leaves it.
    const old3 = pod(v1);
    await old3.start();
    await sluice.schedules.add(schedule({ name: 'redeclared', cron: '15 2 * * *', job: report, payload: { kind: 'op' } }));
    await stop(old3);
    expect(await stored()).toEqual({ ...asV1, cron: '15 2 * * *', payload: { kind: 'op' } });
    await stop(new1);
  });

  it('a pod that died keeps the schedules only it declared until the leader forgets it, then they go', async () => {
    const kept = schedule({ name: 'gone-kept', cron: '0 3 * * *', job: report, payload: { kind: 'k' } });
    const dropped = schedule({ name: 'gone-dropped', cron: '0 4 * * *', job: report, payload: { kind: 'd' } });
    const names = async () => (await sluice.schedules.list()).filter((s) => s.name.startsWith('gone-')).map((s) => s.name);
    const declareDropped = async () => {
      await sluice.schedules.add(dropped);
      await db.pool.query(`UPDATE sluice.cron_schedules SET declared_in = 'code', service = 'gone' WHERE name = 'gone-dropped'`);
    };
    // The old pod, killed: its row stays, with its last beat.
    await declareDropped();
    await workerRow(db.pool, { id: 'gone-old', service: 'gone', schedules: ['gone-kept', 'gone-dropped'], removes: true });
    const w = schedulerOnly({ service: 'gone', schedules: [kept], undeclaredSchedules: 'remove' });
    await w.start();
    expect(await names()).toEqual(['gone-dropped', 'gone-kept']);
    // Silent past the lease but not forgotten (a database outage looks the same from here): kept.
    await db.pool.query(`UPDATE sluice.workers SET heartbeat_at = now() - interval '20 seconds' WHERE id = 'gone-old'`);
    // A leader's reap round, seen to have run by a sentinel worker of another service,
    // silent for two hours, that the round forgets.
    const rescuerRound = async () => {
      await workerRow(db.pool, { id: 'gone-sentinel', service: 'sentinel', schedules: [], removes: false, silentFor: '2 hours' });
      await rescuerUntil({ reapIntervalMs: 100 }, async () => (await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = 'gone-sentinel'`)) === 0, 'a reap round');
    };
    await rescuerRound();
    expect(await names()).toEqual(['gone-dropped', 'gone-kept']);
    // Forgotten (an hour silent): its schedules go at the same round.
    await db.pool.query(`UPDATE sluice.workers SET heartbeat_at = now() - interval '2 hours' WHERE id = 'gone-old'`);
    await rescuerRound();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = 'gone-old'`)).toBe(0);
    expect(await names()).toEqual(['gone-kept']);
    // A worker that did not say what it declares (NULL) keeps every schedule of its service.
    await workerRow(db.pool, { id: 'gone-unsaid', service: 'gone', schedules: null, removes: false });
    await declareDropped();
    expect(await cronRemoveUndeclared(db.pool)).toEqual([]);
    expect(await names()).toEqual(['gone-dropped', 'gone-kept']);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'gone-unsaid'`);
  });

  it("a new leader's rescuer forgets no worker in its first round: after an hour's outage every live worker's beat is that old", async () => {
    await workerRow(db.pool, { id: 'outage-live', service: 'outage', schedules: ['outage-kept'], removes: true, silentFor: '2 hours' });
    // A job whose lease lapsed: its rescue shows that a round ran.
    const id = await sluice.enqueue(report, { kind: 'lapsed' });
    await db.pool.query(
      `UPDATE sluice.jobs SET state = 'running', attempt = 1, locked_by = 'outage-dead', attempted_at = now() - interval '1 minute',
         locked_until = now() - interval '1 second' WHERE id = $1`,
      [id],
    );
    await rescuerUntil({}, async () => (await sluice.getJob(id)).state !== 'running', 'the lapsed job rescued');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = 'outage-live'`)).toBe(1);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'outage-live'`);
  });

  it('a worker the leader forgot registers again at its next beat, with what it declares', async () => {
    const mine = schedule({ name: 'forgot-mine', cron: '0 5 * * *', job: report, payload: { kind: 'f' } });
    const w = schedulerOnly({ service: 'forgot', schedules: [mine], undeclaredSchedules: 'remove', heartbeatIntervalMs: 200 });
    await w.start();
    const row = () => db.pool.query(`SELECT schedules, removes_undeclared_schedules FROM sluice.workers WHERE id = $1`, [w.id]);
    expect((await row()).rows).toEqual([{ schedules: ['forgot-mine'], removes_undeclared_schedules: true }]);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = $1`, [w.id]);
    await waitUntil(async () => (await row()).rowCount === 1, { what: 'the worker registered again' });
    expect((await row()).rows).toEqual([{ schedules: ['forgot-mine'], removes_undeclared_schedules: true }]);
    // Known again, it keeps its schedule against a removal by its service.
    expect(await cronRemoveUndeclared(db.pool, 'forgot')).toEqual([]);
  });

  // Registration and the save of its schedules are two statements: a pod
  // of the new release that registered and saved between them had its
  // definition written over by the older pod, for as long as that one lived.
  it('two pods starting together: the one that registered first does not write its definition over the later one\'s', async () => {
    const def = (cron: string, kind: string) => schedule({ name: 'together', cron, job: report, payload: { kind } });
    const stored = async () => (await db.pool.query(`SELECT cron FROM sluice.cron_schedules WHERE name = 'together'`)).rows[0]?.cron;
    const options = (cron: string) => ({ schedules: [def(cron, cron)], service: 'together', undeclaredSchedules: 'report' as const });
    const older = { id: 'together-old', queues: ['reports'], concurrency: 1 };
    const newer = { id: 'together-new', queues: ['reports'], concurrency: 1 };
    const olderStartedAt = await registerWorker(db.pool, options('0 5 * * *'), older, null);
    const newerStartedAt = await registerWorker(db.pool, options('0 6 * * *'), newer, null);
    expect(newerStartedAt > olderStartedAt).toBe(true);
    const logs = captureLogs('error');
    await declareSchedules(db.pool, options('0 6 * * *'), logs.logger, newerStartedAt);
    await declareSchedules(db.pool, options('0 5 * * *'), logs.logger, olderStartedAt);
    expect(await stored()).toBe('0 6 * * *');
    await db.pool.query(`DELETE FROM sluice.workers WHERE id IN ('together-old', 'together-new')`);
  });

  // The definition redeclared is that of the declaring worker that started
  // last; a pod of the old release that the leader forgot and that came back
  // registered as if it had just started, and its definition won.
  it('an old pod the leader forgot registers again with its first start time: the newer pod still decides the redeclared definition', async () => {
    const def = (cron: string, kind: string) => schedule({ name: 'comeback', cron, job: report, payload: { kind } });
    const stored = async () => (await db.pool.query(`SELECT cron FROM sluice.cron_schedules WHERE name = 'comeback'`)).rows[0]?.cron;
    const startedAt = async (w: Worker) =>
      (await db.pool.query<{ t: string }>(`SELECT started_at::text t FROM sluice.workers WHERE id = $1`, [w.id])).rows[0]?.t;
    const pod = (cron: string, kind: string) => schedulerOnly({ service: 'comeback', schedules: [def(cron, kind)], heartbeatIntervalMs: 200 });
    const old = pod('0 1 * * *', 'old');
    await old.start();
    const firstStart = await startedAt(old);
    const current = pod('0 2 * * *', 'current');
    await current.start();
    expect(await stored()).toBe('0 2 * * *');
    // Forgotten (its row gone, as a reap round leaves it), it registers again at its next beat.
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = $1`, [old.id]);
    await waitUntil(async () => (await startedAt(old)) !== undefined, { what: 'the old pod registered again' });
    expect(await startedAt(old)).toBe(firstStart);
    // Registered again, it does not write its definition over the newer pod's (it did: '0 1 * * *').
    await waitUntil(async () => (await db.pool.query(`SELECT 1 FROM sluice.workers WHERE id = $1 AND heartbeat_at > now() - interval '150 milliseconds'`, [old.id])).rowCount === 1, { what: 'a later beat of the old pod' });
    expect(await stored()).toBe('0 2 * * *');
    // What only it declared, removed by the round that forgot it, comes back.
    await db.pool.query(`DELETE FROM sluice.cron_schedules WHERE name = 'comeback'`);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = $1`, [old.id]);
    await waitUntil(async () => (await stored()) !== undefined, { what: 'the schedule restored by the old pod registering again' });
    expect(await stored()).toBe('0 1 * * *');
    await db.pool.query(`UPDATE sluice.cron_schedules SET cron = '0 2 * * *' WHERE name = 'comeback'`);
    // A pod started and stopped since leaves a definition nobody declares: the newest declarer's comes back.
    const passing = pod('0 3 * * *', 'passing');
    await passing.start();
    expect(await stored()).toBe('0 3 * * *');
    await passing.stop();
    workers.splice(workers.indexOf(passing), 1);
    expect(await stored()).toBe('0 2 * * *');
  });

  it("a removal a worker's start or stop had to leave (the scheduler held the schedules) is made by the leader's next round", async () => {
    const leftover = schedule({ name: 'later-leftover', cron: '0 7 * * *', job: report, payload: { kind: 'l' } });
    await sluice.schedules.add(leftover);
    await db.pool.query(`UPDATE sluice.cron_schedules SET declared_in = 'code', service = 'later' WHERE name = 'later-leftover'`);
    // A live worker of the service that removes undeclared schedules, and declares none: nobody is forgotten this round.
    await workerRow(db.pool, { id: 'later-1', service: 'later', schedules: [], removes: true });
    await rescuerUntil(
      { reapIntervalMs: 100 },
      async () => (await count(db.pool, `SELECT count(*) n FROM sluice.cron_schedules WHERE name = 'later-leftover'`)) === 0,
      'the leftover schedule removed',
    );
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE id = 'later-1'`)).toBe(1);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'later-1'`);
  });

  // Judged by one UPDATE's snapshot, a redeclaration waiting for the row wrote
  // over whatever committed meanwhile (PostgreSQL re-checks only the row's own
  // join condition after the wait).
  it("a redeclaration waits for an operator's save in progress, and leaves what it saved", async () => {
    const v1 = schedule({ name: 'race3-saved', cron: '0 3 * * *', job: report, payload: { kind: 'v1' } });
    const v2 = schedule({ name: 'race3-saved', cron: '0 4 * * *', job: report, payload: { kind: 'v2' } });
    await sluice.schedules.add(v1);
    await db.pool.query(`UPDATE sluice.cron_schedules SET declared_in = 'code', service = 'race-d' WHERE name = 'race3-saved'`);
    // The only known worker declares v2: the stored v1 is due to become v2.
    await workerRow(db.pool, { id: 'race-d1', service: 'race-d', schedules: ['race3-saved'], removes: false, definitions: [v2] });
    const [saving, redeclaring] = await Promise.all([sessions.open(), sessions.open()]);
    // An operator's save of its own expression, not committed yet.
    await saving.c.query('BEGIN');
    await saving.c.query(`UPDATE sluice.cron_schedules SET declared_in = 'sql', service = NULL, cron = '15 2 * * *' WHERE name = 'race3-saved'`);
    const redeclared = cronRedeclare(redeclaring.c, 'race-d');
    await lockWait(db.pool, redeclaring.pid);
    await saving.c.query('COMMIT');
    expect(await redeclared).toEqual([]);
    const stored = await sluice.schedules.get('race3-saved');
    expect([stored.cron, stored.declaredIn]).toEqual(['15 2 * * *', 'sql']);
    await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'race-d1'`);
  });

  it('a removal waits for a declaration of its own service in progress, and keeps what that declares', async () => {
    const taken = schedule({ name: 'race2-taken', cron: '0 3 * * *', job: report, payload: { kind: 'r2' } });
    await sluice.schedules.add(taken);
    await db.pool.query(`UPDATE sluice.cron_schedules SET declared_in = 'code', service = 'race-c' WHERE name = 'race2-taken'`);
    await workerRow(db.pool, { id: 'race-c1', service: 'race-c', schedules: [], removes: true });
    const [declaring, removing] = await Promise.all([sessions.open(), sessions.open()]);
    // A new worker of the same service registers and saves its schedule in one transaction.
    await declaring.c.query('BEGIN');
    await workerRow(declaring.c, { id: 'race-c2', service: 'race-c', schedules: ['race2-taken'], removes: true });
    await declaring.c.query(`UPDATE sluice.cron_schedules SET cron = cron WHERE name = 'race2-taken'`);
    // The removal's first read judges race2-taken removable (the new worker is not committed yet);
    // it then waits for the table lock, and judges again once it has it.
    const removal = cronRemoveUndeclared(removing.c, 'race-c');
    await lockWait(db.pool, removing.pid);
    await declaring.c.query('COMMIT');
    expect(await removal).toEqual([]);
    expect((await sluice.schedules.get('race2-taken')).service).toBe('race-c');
    await db.pool.query(`DELETE FROM sluice.workers WHERE id LIKE 'race-c%'`);
  });

  it('a removal never deletes a schedule declared by a worker that registered before it began', async () => {
    const taken = schedule({ name: 'race-taken', cron: '0 3 * * *', job: report, payload: { kind: 'r' } });
    await sluice.schedules.add(taken);
    await db.pool.query(`UPDATE sluice.cron_schedules SET declared_in = 'code', service = 'race-a' WHERE name = 'race-taken'`);
    await workerRow(db.pool, { id: 'race-a1', service: 'race-a', schedules: [], removes: true });
    // A declaration holds the schedules while the removal of race-a's undeclared ones starts.
    const declaring = await db.pool.connect();
    try {
      await declaring.query('BEGIN');
      await workerRow(declaring, { id: 'race-b1', service: 'race-b', schedules: ['race-taken'], removes: false });
      await declaring.query(`UPDATE sluice.cron_schedules SET service = 'race-b' WHERE name = 'race-taken'`);
      const removal = cronRemoveUndeclared(db.pool, 'race-a');
      await new Promise((r) => setTimeout(r, 300));
      await declaring.query('COMMIT');
      // Service race-b took it over before the removal could judge it.
      expect(await removal).toEqual([]);
    } finally {
      declaring.release();
    }
    expect((await sluice.schedules.get('race-taken')).service).toBe('race-b');
    await db.pool.query(`DELETE FROM sluice.workers WHERE id LIKE 'race-%'`);
  });

  it('a schedule inserted by plain SQL naming an unknown job is refused with a message naming the job', async () => {
    const err = await db.pool
      .query(`INSERT INTO sluice.cron_schedules (name, cron, job_name) VALUES ('orphan', '0 3 * * *', 'no.such.job')`)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '23503', message: 'sluice.cron_schedules: no job named "no.such.job" in sluice.job_types' });
    expect((err as { hint?: string }).hint).toMatch(/registerJobs/);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.cron_schedules`)).toBe(0);
  });

  it('runNow enqueues at once; unknown names are ScheduleNotFoundError', async () => {
    await sluice.schedules.add({ name: 'manual', cron: '0 0 1 1 *', job: report, payload: { kind: 'm' } });
    const id = await sluice.schedules.runNow('manual');
    expect((await sluice.getJob(id)).state).toBe('available');
    await expect(sluice.schedules.runNow('missing')).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await expect(sluice.schedules.disable('missing')).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await expect(sluice.schedules.remove('missing')).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('a schedule inserted by plain SQL is picked up; a bad expression there is disabled with the reason', async () => {
    // A schedule named by job takes the job type's queue: register it as a worker handling it would.
    await new Sluice({ pool: db.pool, jobs: [report] }).registerJobs();
    await db.pool.query(`INSERT INTO sluice.cron_schedules (name, cron, job_name, payload) VALUES ('from-sql', '* * * * * *', 'report.build', '{"kind":"sql"}'), ('broken', '99 * * * *', 'report.build', '{}')`);
    const w = schedulerOnly();
    await w.start();
    await waitUntil(async () => (await firedFor('from-sql')) >= 1, { what: 'sql schedule fired' });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE tags @> ARRAY['cron:from-sql'] AND queue <> 'reports'`)).toBe(0);
    const broken = await waitUntil(async () => {
      const r = await sluice.schedules.get('broken');
      return r.enabled ? null : r;
    }, { what: 'broken disabled' });
    expect(broken.lastError).toMatch(/59|range|Constraint/i);
  });
});

describe('redeclaring a disabled schedule', () => {
  const full = defineJob({ name: 'cron.full', queue: 'cron.full', schema: z.object({}) });

  /** A row written by plain SQL that no scheduler can read, once a running scheduler has disabled it. */
  async function disabledAsUnreadable(name: string): Promise<void> {
    await new Sluice({ pool: db.pool, jobs: [report] }).registerJobs();
    await db.pool.query(`INSERT INTO sluice.cron_schedules (name, cron, job_name, payload) VALUES ($1, '99 * * * *', 'report.build', '{}')`, [name]);
    await waitUntil(async () => {
      const r = await sluice.schedules.get(name);
      return !r.enabled && r.lastError !== null;
    }, { what: `${name} disabled by the scheduler` });
  }

  it.each([
    ['a worker declares it in code', (def: ScheduleDefinition) => schedulerOnly({ schedules: [def] }).start()],
    ['schedules.add saves it', async (def: ScheduleDefinition) => void (await sluice.schedules.add(def))],
  ])('one the scheduler disabled as unreadable fires again once %s with a valid expression', async (_how, redeclare) => {
    await schedulerOnly().start();
    await disabledAsUnreadable('revived');
    await redeclare(schedule({ name: 'revived', cron: '* * * * * *', job: report, payload: { kind: 'fixed' } }));
    expect(await sluice.schedules.get('revived')).toMatchObject({ enabled: true, lastError: null, cron: '* * * * * *' });
    await waitUntil(async () => (await firedFor('revived')) >= 1, { what: 'a fire after the redeclaration' });
  });

  it("an operator's disable is kept: of a healthy schedule, of one whose fires were failing, of one repaired and enabled first", async () => {
    await sluice.queues.configure('cron.full', { maxDepth: 1, overflow: 'reject' });
    await sluice.enqueue(full, {});
    const calm = schedule({ name: 'op-calm', cron: '* * * * * *', job: report, payload: { kind: 'c' } });
    const failing = schedule({ name: 'op-failing', cron: '* * * * * *', job: full, payload: {} });
    const repaired = schedule({ name: 'op-repaired', cron: '0 3 * * *', job: report, payload: { kind: 'r' } });
    await schedulerOnly({ schedules: [calm, failing] }).start();
    await waitUntil(async () => (await firedFor('op-calm')) >= 1, { what: 'op-calm fired' });
    await waitUntil(async () => (await sluice.schedules.get('op-failing')).lastError, { what: 'op-failing failed a fire' });
    await disabledAsUnreadable('op-repaired');
    // Repaired by hand, then enabled: the scheduler's reason for disabling it no longer holds.
    await db.pool.query(`UPDATE sluice.cron_schedules SET cron = '0 3 * * *' WHERE name = 'op-repaired'`);
    await sluice.schedules.enable('op-repaired');
    for (const name of ['op-calm', 'op-failing', 'op-repaired']) await sluice.schedules.disable(name);
    const firedAtDisable = await firedFor('op-calm');

    await schedulerOnly({ schedules: [calm, failing, repaired] }).start();
    const rows = await sluice.schedules.list();
    expect(rows.filter((r) => r.name.startsWith('op-')).map((r) => [r.name, r.enabled])).toEqual([
      ['op-calm', false],
      ['op-failing', false],
      ['op-repaired', false],
    ]);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await firedFor('op-calm')).toBe(firedAtDisable);
  });
});
