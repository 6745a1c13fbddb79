// NOTIFY needs no privilege: any login can send on sluice's channels. Each
// notification is a hint that may cost a query, never a wrong state or a
// wrong answer. The spoofs come from a role with no grants at all.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { z } from 'zod';
import { CancelledError, JobNotFoundError, Sluice, defineJob } from '../packages/sluice/src/index.js';
import { waitUntil } from './helpers/db.js';
import { captureLogs } from './helpers/log-capture.js';
import { useSuite } from './helpers/suite.js';

const s = useSuite({ pollIntervalMs: 200 });
const stranger = `t_nogrants_${randomBytes(3).toString('hex')}`;
let spoofer: pg.Client;

async function spoof(channel: string, payload: string): Promise<void> {
  await spoofer.query('SELECT pg_notify($1, $2)', [channel, payload]);
}

function gate(): { open(): void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

beforeAll(async () => {
  // A password, so the login gets in whether the server trusts it or asks.
  const password = randomBytes(9).toString('hex');
  await s.db.pool.query(`CREATE ROLE ${stranger} LOGIN PASSWORD '${password}'`);
  const u = new URL(s.db.url);
  u.username = stranger;
  u.password = password;
  spoofer = new pg.Client({ connectionString: u.toString() });
  await spoofer.connect();
  // The role really can read nothing of sluice's.
  await expect(spoofer.query('SELECT count(*) FROM sluice.jobs')).rejects.toMatchObject({ code: '42501' });
});

afterAll(async () => {
  await spoofer.end();
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${stranger}`);
  await admin.end();
});

describe('sluice_cancel', () => {
  const job = defineJob({ name: 'nt.cancel', queue: 'nt.cancel', schema: z.object({}) });

  it('a cancel notice from a login with no grants does not abort the job: it completes on attempt 1 with no error', async () => {
    const { logger, lines } = captureLogs('debug');
    const release = gate();
    let started = false;
    let signalReason: unknown = null;
    s.startWorker({
      logger,
      handlers: [
        job.handle(async (_p, ctx) => {
          started = true;
          ctx.signal.addEventListener('abort', () => (signalReason = ctx.signal.reason));
          await release.opened;
          return 'finished';
        }),
      ],
    });
    await s.workers[0]!.start();
    const id = await s.sluice.enqueue(job, {});
    await waitUntil(() => started, { what: 'handler started' });
    await spoof('sluice_cancel', String(id));
    // Either the worker checked the notice and ignored it, or it aborted the job.
    await waitUntil(() => signalReason !== null || lines.some((l) => l.jobId === id && /cancel notice ignored/.test(String(l.msg))), {
      what: 'notice handled',
    });
    expect(signalReason).toBeNull();
    release.open();
    expect(await s.sluice.waitFor(id, { timeoutMs: 10_000 })).toBe('finished');
    const record = await s.sluice.getJob(id);
    expect({ state: record.state, attempt: record.attempt, errors: record.errors }).toEqual({ state: 'completed', attempt: 1, errors: [] });
  });

  it('a real cancel still aborts the running handler', async () => {
    const release = gate();
    let signalReason: unknown = null;
    s.startWorker({
      handlers: [
        job.handle(async (_p, ctx) => {
          ctx.signal.addEventListener('abort', () => {
            signalReason = ctx.signal.reason;
            release.open();
          });
          await release.opened;
        }),
      ],
    });
    await s.workers[0]!.start();
    const id = await s.sluice.enqueue(job, {});
    await waitUntil(async () => (await s.sluice.getJob(id)).state === 'running', { what: 'running' });
    expect(await s.sluice.cancel(id)).toBe('running');
    await waitUntil(() => signalReason !== null, { what: 'signal fired' });
    expect(signalReason).toBeInstanceOf(CancelledError);
    expect((await s.sluice.getJob(id)).state).toBe('cancelled');
  });
});

describe('sluice_finished', () => {
  const job = defineJob({ name: 'nt.finish', queue: 'nt.finish', schema: z.object({}) });

  it('a spoofed finish notice does not resolve waitFor for a job that does not exist', async () => {
    // One connection for sluice's queries, so the order of the waiter's reads
    // is fixed: the spoof's read lands between the notice request and the
    // waiter's own first look.
    const pool = new pg.Pool({ connectionString: s.db.url, max: 1 });
    const sluice = new Sluice({ pool, listenConnectionString: s.db.url });
    try {
      s.startWorker({ handlers: [job.handle(async () => 'real')] });
      await s.workers[0]!.start();
      // Starts the waiter's LISTEN connection.
      expect(await sluice.waitFor(await sluice.enqueue(job, {}), { timeoutMs: 10_000 })).toBe('real');
      const missing = 987_654_321;
      const held = await pool.connect();
      const waited = sluice.waitFor(missing, { timeoutMs: 10_000 }).then((value) => ({ value }), (error: unknown) => ({ error }));
      await waitUntil(() => pool.waitingCount === 1, { what: 'notice request queued' });
      await spoof('sluice_finished', String(missing));
      await waitUntil(() => pool.waitingCount === 2, { what: 'spoof read queued' });
      held.release();
      const outcome = await waited;
      expect(outcome).toEqual({ error: expect.any(JobNotFoundError) });
    } finally {
      await sluice.close();
      await pool.end();
    }
  });
});

describe('sluice_jobs, sluice_scheduled, sluice_cron', () => {
  const job = defineJob({ name: 'nt.wake', queue: 'nt.live', schema: z.object({ n: z.number() }) });
  const paused = defineJob({ name: 'nt.paused', queue: 'nt.paused', schema: z.object({}) });

  it('a spoofed wake-up costs a query at most: no paused, delayed or unscheduled job runs early', async () => {
    const ran: string[] = [];
    s.startWorker({
      queues: ['nt.live', 'nt.paused'],
      handlers: [job.handle(async (p) => void ran.push(`live ${p.n}`)), paused.handle(async () => void ran.push('paused'))],
    });
    await s.sluice.queues.pause('nt.paused');
    const held = await s.sluice.enqueue(paused, {});
    const later = await s.sluice.enqueue(job, { n: 1 }, { delayMs: 3_600_000 });
    await s.sluice.schedules.add({ name: 'nt.yearly', cron: '@yearly', job, payload: { n: 2 } });
    await s.workers[0]!.start();
    for (const [channel, payload] of [
      ['sluice_jobs', 'nt.paused'],
      ['sluice_jobs', 'nt.live'],
      ['sluice_jobs', 'x'.repeat(7000)],
      ['sluice_scheduled', 'nt.live'],
      ['sluice_cron', ''],
      ['sluice_cancel', String(later)],
      ['sluice_cancel', 'not a number'],
      ['sluice_finished', String(held)],
    ]) {
      await spoof(channel!, payload!);
    }
    // Notifications reach the worker in order: once this job has run, the spoofs before it were handled.
    const marker = await s.sluice.enqueue(job, { n: 3 });
    expect(await s.sluice.waitFor(marker, { timeoutMs: 10_000 })).toBeNull();
    expect(ran).toEqual(['live 3']);
    expect((await s.sluice.getJob(held)).state).toBe('available');
    expect((await s.sluice.getJob(later)).state).toBe('scheduled');
    expect((await s.sluice.schedules.get('nt.yearly')).lastRunAt).toBeNull();
  });
});
