import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../packages/sluice/src/cli/main.js';
import { spawnSluiceCli } from './helpers/cli.js';
import { count, createTestDb, type TestDb } from './helpers/db.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('sluice CLI', () => {
  it('prints help for every command and exits 0', async () => {
    for (const cmd of [['--help'], ['migrate', '--help'], ['worker', '--help'], ['cron', '--help']]) {
      const r = await run(...cmd);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/sluice/);
    }
  });

  it('an unknown command or option is a usage error, exit 2', async () => {
    expect((await run('frobnicate')).code).toBe(2);
    const r = await run('migrate', '--database-url', db.url, '--bogus');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--bogus');
  });

  it('migrate is a no-op on an up-to-date database', async () => {
    const r = await run('migrate', '--database-url', db.url);
    expect(r.code).toBe(0);
    expect(r.out).toContain('nothing to apply');
    expect(r.out).not.toContain('applied 0');
  });

  it('cron add with a bad expression or zone exits 2 naming the argument, nothing written', async () => {
    const bad = await run('cron', 'add', 'nightly', '--cron', '99 * * * *', '--job', 'report', '--database-url', db.url);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--cron');
    const tz = await run('cron', 'add', 'nightly', '--cron', '0 3 * * *', '--timezone', 'Nowhere/City', '--job', 'report', '--database-url', db.url);
    expect(tz.code).toBe(2);
    expect(tz.err).toContain('--timezone');
    const payload = await run('cron', 'add', 'nightly', '--cron', '0 3 * * *', '--job', 'report', '--payload', '{nope', '--database-url', db.url);
    expect(payload.code).toBe(2);
    expect(payload.err).toContain('--payload');
    const missing = await run('cron', 'add', 'nightly', '--job', 'report', '--database-url', db.url);
    expect(missing.code).toBe(2);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.cron_schedules')).toBe(0);
  });

  it('cron add naming a job that no worker registered exits 2 naming --job, nothing written', async () => {
    const r = await run('cron', 'add', 'nightly', '--cron', '0 3 * * *', '--job', 'never.registered', '--database-url', db.url);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--job');
    expect(r.err).toContain('"never.registered"');
    expect(r.err).toContain('sluice.job_types');
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.cron_schedules')).toBe(0);
  });

  it('cron add, list, disable, enable, run-now, remove', async () => {
    // As a worker that handles `report` would have registered it.
    await db.pool.query(`INSERT INTO sluice.job_types (name, queue, max_attempts, backoff_kind, backoff_base_ms, backoff_factor, backoff_max_ms, backoff_jitter)
                         VALUES ('report', 'reports', 7, 'fixed', 10, 1, 10, 0)`);
    const add = await run('cron', 'add', 'nightly', '--cron', '0 3 * * *', '--timezone', 'Europe/Paris', '--job', 'report', '--payload', '{"kind":"n"}', '--database-url', db.url);
    expect(add.code).toBe(0);
    const list = await run('cron', 'list', '--json', '--database-url', db.url);
    const rows = JSON.parse(list.out);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Paris', job: 'report', enabled: true });
    expect((await run('cron', 'disable', 'nightly', '--database-url', db.url)).code).toBe(0);
    expect(JSON.parse((await run('cron', 'list', '--json', '--database-url', db.url)).out)[0].enabled).toBe(false);
    expect((await run('cron', 'enable', 'nightly', '--database-url', db.url)).code).toBe(0);
    const now = await run('cron', 'run-now', 'nightly', '--json', '--database-url', db.url);
    expect(now.code).toBe(0);
    const { id } = JSON.parse(now.out);
    // The job takes its queue and retries from the job type.
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1 AND queue = 'reports' AND max_attempts = 7`, [id])).toBe(1);
    expect((await run('cron', 'remove', 'nightly', '--database-url', db.url)).code).toBe(0);
    const gone = await run('cron', 'remove', 'nightly', '--database-url', db.url);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('ScheduleNotFoundError');
  });

  it('worker refuses a module that cannot be loaded, exit 2', async () => {
    const r = await run('worker', 'does-not-exist.ts', '--database-url', db.url);
    expect(r.code).toBe(2);
    expect(r.err).toContain('<module>');
    const c = await run('worker', 'x.ts', '--concurrency', '0', '--database-url', db.url);
    expect(c.code).toBe(2);
    expect(c.err).toContain('--concurrency');
  });

  it.each(['enable', 'disable', 'remove', 'run-now'])('cron %s with an invalid schedule name exits 2 naming <name>', async (sub) => {
    const r = await run('cron', sub, 'bad name!', '--database-url', db.url);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain('<name>');
  });

  it.each([
    ['--timezone', ['--timezone', '']],
    ['--misfire', ['--misfire', '']],
    ['--run-all-cap', ['--misfire', 'run_all', '--run-all-cap', '10001']],
  ])('cron add with a bad %s exits 2 naming it, nothing saved (not the default)', async (arg, extra) => {
    await db.pool.query(`INSERT INTO sluice.job_types (name, queue, max_attempts, backoff_kind, backoff_base_ms, backoff_factor, backoff_max_ms, backoff_jitter)
                         VALUES ('cli.empty', 'cli', 1, 'fixed', 10, 1, 10, 0) ON CONFLICT DO NOTHING`);
    const r = await run('cron', 'add', 'cli-empty', '--cron', '0 3 * * *', '--job', 'cli.empty', ...extra, '--database-url', db.url);
    expect(r.code, r.out).toBe(2);
    expect(r.err).toContain(arg);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.cron_schedules WHERE name = 'cli-empty'`)).toBe(0);
  });

  it('worker with an option createWorker refuses exits 2 naming the flag, not 1', async () => {
    const r = await run('worker', 'test/fixtures/supervised-handlers.ts', '--concurrency', '20000', '--database-url', db.url);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain('--concurrency');
  });

  /** The exit code of `sluice worker ...`, or 'running' when it started a worker instead of refusing. */
  async function workerExit(args: string[]): Promise<number | null | 'running'> {
    const w = spawnSluiceCli(['worker', 'test/fixtures/supervised-handlers.ts', ...args, '--database-url', db.url]);
    const code = await Promise.race([w.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000))]);
    if (code === 'running') {
      w.child.kill('SIGKILL');
      await w.exited;
    }
    return code;
  }

  it.each([[''], [','], ['cpu,']])('worker --queues %j exits 2: an empty entry is refused, not dropped (an empty list meant every queue of the handlers)', async (queues) => {
    expect(await workerExit(['--queues', queues])).toBe(2);
  }, 30_000);

  it('worker --processes 2 with an option createWorker refuses exits 2 before starting any process', async () => {
    expect(await workerExit(['--processes', '2', '--concurrency', '20000'])).toBe(2);
    expect(await workerExit(['--processes', '1001'])).toBe(2);
    expect(await count(db.pool, 'SELECT count(*) n FROM sluice.workers')).toBe(0);
  }, 40_000);
});
