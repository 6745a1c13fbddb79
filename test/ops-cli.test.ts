// The operations commands, run as a user runs them: the real `sluice` binary
// in a child process, checked by exit code and output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { main } from '../packages/sluice/src/cli/main.js';
import { Sluice, defineJob } from '../packages/sluice/src/index.js';
import { runMaintenance, type MaintenanceOptions } from '../packages/sluice/src/admin.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { sluiceCli, spawnSluiceCli } from './helpers/cli.js';
import { freePort } from './helpers/port.js';

let db: TestDb;
const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);
const cli = (...args: string[]) => sluiceCli(args, { DATABASE_URL: db.url });

/** The same entry point in this process: for the argument matrix, where spawning each case adds only startup time. */
async function inProcess(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  // roles prints a file and takes no database.
  const args = argv[0] === 'roles' ? argv : [...argv, '--database-url', db.url];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

async function dead(ids: number[], queue: string): Promise<void> {
  for (const id of ids) {
    await q(`INSERT INTO sluice.dead_jobs (id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
               backoff_factor, backoff_max_ms, backoff_jitter, reason, errors, created_at, run_at)
             VALUES ($1, $2, 'dlq.job', '{"k":1}', 0, 3, 3, 'fixed', 0, 1, 0, 0, 'exhausted',
               '[{"attempt":3,"at":"2026-01-01T00:00:00Z","kind":"error","name":"Error","message":"boom"}]', now(), now())`, [id, queue]);
  }
  await q(`INSERT INTO sluice.queues (name) VALUES ($1) ON CONFLICT DO NOTHING`, [queue]);
}

describe('sluice CLI: help and usage errors', () => {
  it('every operations command has --help and is listed in the main help', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    expect((await cli('doctor', '--help')).stdout).toContain('sluice doctor');
    for (const cmd of ['stats', 'jobs', 'dlq', 'queues', 'metrics', 'prune', 'doctor', 'roles']) {
      expect(top.stdout).toContain(`  ${cmd} `);
      const r = await inProcess(cmd, '--help');
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain(`sluice ${cmd}`);
      expect(r.stdout, cmd).toMatch(/Exit codes/);
    }
  });

  it('bad arguments exit 2 naming the argument, and write nothing', async () => {
    await q(`INSERT INTO sluice.queues (name, concurrency) VALUES ('untouched', 3)`);
    await dead([9001], 'untouched');
    const cases: [string[], string][] = [
      [['queues', 'set', 'untouched', '--concurrency', 'zero'], '--concurrency'],
      [['queues', 'set', 'untouched', '--concurrency', '0'], '--concurrency'],
      [['queues', 'set', 'untouched', '--alert-max-error-rate', '1.5'], '--alert-max-error-rate'],
      [['queues', 'set', 'untouched', '--keep-history', 'yes'], '--keep-history'],
      [['queues', 'set', 'untouched', '--retention-ms', '10'], '--retention-ms'],
      [['queues', 'set', 'untouched'], '<settings>'],
      [['queues', 'pause', 'bad name!'], '<name>'],
      [['queues', 'list', '--weight', '2'], '--weight'],
      [['jobs', 'list', '--state', 'bogus'], '--state'],
      [['jobs', 'list', '--limit', '-1'], '--limit'],
      [['jobs', 'show', 'abc'], '<id>'],
      [['jobs', 'frob'], 'frob'],
      [['dlq', 'purge'], '--all'],
      [['dlq', 'purge', '--all', '--queue', 'untouched'], '--all'],
      [['dlq', 'replay'], '<id>'],
      [['stats', '--interval-ms', '5'], '--interval-ms'],
      [['stats', '--bogus'], '--bogus'],
      [['doctor', '--long-xact-ms', 'x'], '--long-xact-ms'],
      [['prune', '--batch-size', '0'], '--batch-size'],
      [['metrics', '--port', '99999'], '--port'],
      [['roles', '--owner', 'Bad-Name'], '--owner'],
      // Options of another dlq subcommand: ignored, they acted on more jobs than asked.
      [['dlq', 'purge', '--queue', 'untouched', '--limit', '5'], '--limit'],
      [['dlq', 'purge', '--queue', 'untouched', '--before', '4'], '--before'],
      [['dlq', 'replay', '--queue', 'untouched', '--older-than-ms', '86400000'], '--older-than-ms'],
    ];
    // Two as a user runs them, the rest through the same entry point in-process.
    for (const [args, arg] of [cases[0]!, cases[12]!]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(arg);
    }
    for (const [args, arg] of cases) {
      const r = await inProcess(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(arg);
    }
    const { rows } = await q(`SELECT concurrency, keep_history, retention_ms, paused FROM sluice.queues WHERE name = 'untouched'`);
    expect(rows[0]).toEqual({ concurrency: 3, keep_history: true, retention_ms: '604800000', paused: false });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = 9001`)).toBe(1);
  });

  it('numbers past what the SQL or queues.configure() takes exit 2 naming the argument, not 1 with a raw database error', async () => {
    await q(`INSERT INTO sluice.queues (name, concurrency) VALUES ('untouched-n', 3)`);
    await dead([9002], 'untouched-n');
    const cases: [string[], string][] = [
      [['queues', 'set', 'untouched-n', '--alert-max-error-rate', `0.${'0'.repeat(50)}1`], '--alert-max-error-rate'],
      [['queues', 'set', 'untouched-n', '--alert-max-error-rate', '0.0000009'], '--alert-max-error-rate'],
      [['queues', 'set', 'untouched-n', '--concurrency', '1000001'], '--concurrency'],
      [['queues', 'set', 'untouched-n', '--weight', '1000001'], '--weight'],
      [['queues', 'set', 'untouched-n', '--max-depth', '2000000001'], '--max-depth'],
      [['queues', 'set', 'untouched-n', '--alert-max-depth', '2000000001'], '--alert-max-depth'],
      [['queues', 'set', 'untouched-n', '--retention-ms', '3155760000001'], '--retention-ms'],
      [['stats', '--dead-after-ms', '2147483648'], '--dead-after-ms'],
      [['dlq', 'purge', '--older-than-ms', '999999999999999'], '--older-than-ms'],
      [['prune', '--metrics-retention-ms', '3155760000001'], '--metrics-retention-ms'],
    ];
    for (const [args, arg] of cases) {
      const r = await inProcess(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(arg);
    }
    const { rows } = await q(`SELECT concurrency, weight, max_depth, alert_max_depth, alert_max_error_rate, retention_ms FROM sluice.queues WHERE name = 'untouched-n'`);
    expect(rows[0]).toEqual({ concurrency: 3, weight: 1, max_depth: null, alert_max_depth: null, alert_max_error_rate: null, retention_ms: '604800000' });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE id = 9002`)).toBe(1);
    // The bounds themselves are taken.
    const ok = await inProcess('queues', 'set', 'untouched-n', '--concurrency', '1000000', '--alert-max-error-rate', '0.000001', '--retention-ms', '3155760000000');
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('no database given is a usage error', async () => {
    const r = await sluiceCli(['stats'], { DATABASE_URL: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--database-url');
  });

  it('an unreachable database exits 1', async () => {
    const r = await sluiceCli(['stats', '--database-url', 'postgres://nobody@127.0.0.1:1/none'], {});
    expect(r.code).toBe(1);
  });
});

describe('sluice stats', () => {
  it('shows each queue, its alerts, and --json for scripts', async () => {
    await q(`SELECT sluice.enqueue_many('s.job', '[1,2,3,4]'::jsonb, queue => 'st-busy')`);
    await q(`UPDATE sluice.queues SET alert_max_depth = 2 WHERE name = 'st-busy'`);
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed, failed) VALUES ('st-busy', date_trunc('minute', now()), 0, 9, 1)
      ON CONFLICT (queue, minute, shard) DO UPDATE SET completed = sluice.metrics_minutely.completed + 9, failed = sluice.metrics_minutely.failed + 1`);
    const text = await cli('stats');
    expect(text.code).toBe(0);
    const line = text.stdout.split('\n').find((l) => l.startsWith('st-busy'))!;
    expect(line.split(/\s+/).slice(0, 4)).toEqual(['st-busy', 'active', '4', '0']);
    expect(line).toContain('10.0');
    expect(text.stdout).toContain('! depth      queue st-busy: 4 jobs waiting, over 2');
    const json = JSON.parse((await inProcess('stats', '--json', '--queue', 'st-busy')).stdout);
    expect(json.queues).toHaveLength(1);
    expect(json.queues[0]).toMatchObject({ queue: 'st-busy', available: 4, completed1m: 9, failed5m: 1 });
    expect(json.alerts).toEqual([expect.objectContaining({ queue: 'st-busy', alert: 'depth', value: 4, threshold: 2 })]);
    await q(`UPDATE sluice.queues SET alert_max_depth = NULL WHERE name = 'st-busy'`);
  });

  it('--dead-after-ms decides which workers the workers column counts, as it does for the no_worker alert (default 15 s)', async () => {
    await q(`INSERT INTO sluice.queues (name, alert_no_worker) VALUES ('st-beat', true)`);
    await q(`INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at)
             VALUES ('w-st-beat', 'h', 1, '{st-beat}', 1, 't', now() - interval '20 seconds')`);
    try {
      const snapshot = async (...args: string[]) => {
        const r = await inProcess('stats', '--json', '--queue', 'st-beat', ...args);
        expect(r.code, r.stderr).toBe(0);
        const json = JSON.parse(r.stdout) as { queues: { workersAlive: number }[]; alerts: { alert: string }[] };
        return { workers: json.queues[0]!.workersAlive, alerts: json.alerts.map((a) => a.alert) };
      };
      expect(await snapshot()).toEqual({ workers: 0, alerts: ['no_worker'] });
      expect(await snapshot('--dead-after-ms', '60000')).toEqual({ workers: 1, alerts: [] });
      expect(await snapshot('--dead-after-ms', '10000')).toEqual({ workers: 0, alerts: ['no_worker'] });
      // The table as a user reads it: workers is the last column.
      const text = await cli('stats', '--queue', 'st-beat', '--dead-after-ms', '60000');
      expect(text.code).toBe(0);
      expect(text.stdout.split('\n').find((l) => l.startsWith('st-beat'))!.trim().split(/\s+/).at(-1)).toBe('1');
      expect(text.stdout).toContain('alerts: none');
    } finally {
      await q(`DELETE FROM sluice.workers WHERE id = 'w-st-beat'`);
    }
  });

  it('--watch redraws until interrupted, then exits 0', async () => {
    const run = spawnSluiceCli(['stats', '--watch', '--interval-ms', '200'], { DATABASE_URL: db.url });
    await waitUntil(() => (run.stdout().match(/^sluice stats /gm) ?? []).length >= 2, { what: 'two frames' });
    await q(`SELECT sluice.enqueue('w.job', '{}', queue => 'st-new')`);
    await waitUntil(() => run.stdout().includes('st-new'), { what: 'a new queue in a later frame' });
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });

  it('--watch --json prints one document per frame', async () => {
    const run = spawnSluiceCli(['stats', '--watch', '--json', '--interval-ms', '200'], { DATABASE_URL: db.url });
    await waitUntil(() => run.stdout().split('\n').filter(Boolean).length >= 2, { what: 'two lines' });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    for (const l of run.stdout().split('\n').filter(Boolean)) expect(JSON.parse(l)).toHaveProperty('queues');
  });
});

describe('sluice jobs', () => {
  it('lists with filters and keyset pagination', async () => {
    const { rows } = await q(`SELECT sluice.enqueue_many('page.job', '[1,2,3,4,5]'::jsonb, queue => 'pages') AS id`);
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => b - a);
    await q(`SELECT sluice.enqueue('other.job', '{}', queue => 'pages')`);
    const seen: number[] = [];
    let before: number | null = null;
    for (let page = 0; page < 5; page++) {
      const args = ['jobs', 'list', '--queue', 'pages', '--name', 'page.job', '--limit', '2', '--json', ...(before ? ['--before', String(before)] : [])];
      const out = JSON.parse((page === 0 ? await cli(...args) : await inProcess(...args)).stdout);
      seen.push(...out.jobs.map((j: { id: number }) => j.id));
      before = out.nextBefore;
      if (before === null) break;
    }
    expect(seen).toEqual(ids);
    const text = await inProcess('jobs', 'list', '--queue', 'pages', '--limit', '2');
    expect(text.stdout).toMatch(/next page: --before \d+/);
    const none = await inProcess('jobs', 'list', '--queue', 'pages', '--state', 'dead');
    expect(none.stdout.trim()).toBe('(none)');
  });

  it('retry of a delayed job that never ran is refused, and the job keeps its time', async () => {
    await q(`INSERT INTO sluice.jobs (id, queue, name, payload, run_at, state) VALUES (9150, 'jq', 'dlq.job', '{}', now() + interval '30 days', 'scheduled')`);
    const r = await inProcess('jobs', 'retry', '9150');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('JobNotFoundError');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = 9150 AND state = 'scheduled' AND run_at > now() + interval '29 days'`)).toBe(1);
    await q(`DELETE FROM sluice.jobs WHERE id = 9150`);
  });

  it('show hides the payload unless asked; retry and cancel act on the job', async () => {
    await dead([9100], 'jq');
    const shown = await cli('jobs', 'show', '9100');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('#3 2026-01-01T00:00:00Z error Error: boom');
    expect(shown.stdout).not.toContain('"k"');
    expect((await inProcess('jobs', 'show', '9100', '--payload')).stdout).toContain('{"k":1}');
    expect(JSON.parse((await inProcess('jobs', 'show', '9100', '--json')).stdout)).toMatchObject({ id: 9100, state: 'dead' });
    expect((await inProcess('jobs', 'retry', '9100')).code).toBe(0);
    expect((await q(`SELECT state FROM sluice.jobs WHERE id = 9100`)).rows[0].state).toBe('available');
    const cancel = await inProcess('jobs', 'cancel', '9100', '--json');
    expect(JSON.parse(cancel.stdout)).toEqual({ id: 9100, cancelled: true, was: 'available' });
    const again = await cli('jobs', 'cancel', '9100');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('JobNotFoundError');
  });
});

describe('sluice dlq', () => {
  it('replays two dead jobs that held the same unique key: the older keeps it, both run', async () => {
    await dead([9401, 9402], 'dlq-u');
    await q(`UPDATE sluice.dead_jobs SET unique_key = 'same' WHERE id IN (9401, 9402)`);
    expect(JSON.parse((await inProcess('dlq', 'replay', '--queue', 'dlq-u', '--json')).stdout)).toEqual({ replayed: [9401, 9402] });
    const { rows } = await q(`SELECT id, unique_key FROM sluice.jobs WHERE queue = 'dlq-u' ORDER BY id`);
    expect(rows).toEqual([{ id: '9401', unique_key: 'same' }, { id: '9402', unique_key: null }]);
    await q(`DELETE FROM sluice.jobs WHERE queue = 'dlq-u'`);
  });

  it('lists, replays by id and by queue, purges', async () => {
    await dead([9201, 9202, 9203], 'dlq-a');
    await dead([9301, 9302], 'dlq-b');
    const list = JSON.parse((await cli('dlq', 'list', '--queue', 'dlq-a', '--json')).stdout);
    expect(list.jobs.map((j: { id: number }) => j.id)).toEqual([9203, 9202, 9201]);
    expect(list.jobs[0]).toMatchObject({ state: 'dead', reason: 'exhausted', last_error: 'boom' });
    const missing = await inProcess('dlq', 'replay', '9201', '424242');
    expect(missing.code).toBe(1);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE queue = 'dlq-a'`)).toBe(3);
    expect(JSON.parse((await inProcess('dlq', 'replay', '9201', '--json')).stdout)).toEqual({ replayed: [9201] });
    expect(JSON.parse((await inProcess('dlq', 'replay', '--queue', 'dlq-a', '--limit', '1', '--json')).stdout)).toEqual({ replayed: [9202] });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id IN (9201, 9202)`)).toBe(2);
    expect(JSON.parse((await inProcess('dlq', 'purge', '9203', '--json')).stdout)).toEqual({ purged: 1 });
    expect((await cli('dlq', 'purge', '--queue', 'dlq-b')).stdout).toContain('purged 2 dead job(s)');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.dead_jobs WHERE queue LIKE 'dlq-%'`)).toBe(0);
  });
});

describe('sluice queues', () => {
  it('pause, resume, set and list', async () => {
    expect((await cli('queues', 'pause', 'qcli')).code).toBe(0);
    expect((await q(`SELECT paused FROM sluice.queues WHERE name = 'qcli'`)).rows[0].paused).toBe(true);
    expect((await inProcess('queues', 'resume', 'qcli')).code).toBe(0);
    const set = await cli('queues', 'set', 'qcli', '--concurrency', '5', '--weight', '3', '--max-depth', '1000', '--alert-max-depth', '50',
      '--alert-max-wait-ms', '60000', '--alert-max-error-rate', '0.25', '--alert-no-worker', 'true', '--keep-history', 'false', '--retention-ms', '86400000');
    expect(set.code).toBe(0);
    let row = JSON.parse((await inProcess('queues', 'list', '--json')).stdout).find((r: { name: string }) => r.name === 'qcli');
    expect(row).toEqual({
      name: 'qcli', paused: false, concurrency: 5, weight: 3, max_depth: 1000, overflow: 'reject', alert_max_depth: 50,
      alert_max_wait_ms: 60000, alert_max_error_rate: 0.25, alert_no_worker: true, keep_history: false, retention_ms: 86400000,
    });
    expect((await inProcess('queues', 'set', 'qcli', '--concurrency', 'none', '--alert-max-depth', 'none')).code).toBe(0);
    row = JSON.parse((await inProcess('queues', 'list', '--json')).stdout).find((r: { name: string }) => r.name === 'qcli');
    expect(row).toMatchObject({ concurrency: null, alert_max_depth: null, weight: 3 });
  });
});

describe('--json', () => {
  it('every command that prints data takes --json and prints one JSON document', async () => {
    await dead([9301, 9302], 'json-q');
    // A schedule names a registered job type.
    await new Sluice({ pool: db.pool, jobs: [defineJob({ name: 'json.job', queue: 'json-q', schema: z.object({}) })] }).registerJobs();
    const { rows } = await q(`SELECT sluice.enqueue('json.job', '{}', queue => 'json-q') AS id`);
    const id = String(rows[0]!.id);
    const runs: string[][] = [
      ['migrate'],
      ['roles'],
      ['stats'],
      ['jobs', 'list'],
      ['jobs', 'show', id],
      ['dlq', 'list'],
      ['dlq', 'replay', '9301'],
      ['dlq', 'purge', '9302'],
      ['queues', 'list'],
      ['queues', 'set', 'json-q', '--concurrency', '4'],
      ['queues', 'pause', 'json-q'],
      ['queues', 'resume', 'json-q'],
      ['cron', 'add', 'json-cron', '--cron', '0 3 * * *', '--job', 'json.job'],
      ['cron', 'list'],
      ['cron', 'disable', 'json-cron'],
      ['cron', 'enable', 'json-cron'],
      ['cron', 'run-now', 'json-cron'],
      ['cron', 'remove', 'json-cron'],
      ['jobs', 'cancel', id],
      ['metrics'],
      ['prune'],
      ['doctor'],
    ];
    for (const args of runs) {
      const r = await (args[0] === 'migrate' || args[0] === 'roles' ? cli(...args, '--json') : inProcess(...args, '--json'));
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(() => JSON.parse(r.stdout), `${args.join(' ')} printed ${r.stdout.slice(0, 200)}`).not.toThrow();
    }
    expect(JSON.parse((await cli('roles', '--json')).stdout).sql).toContain('CREATE ROLE');
    const metrics = JSON.parse((await inProcess('metrics', '--json')).stdout) as { name: string }[];
    expect(metrics.map((m) => m.name)).toContain('sluice_jobs');
    expect((await inProcess('metrics', '--json', '--port', '0')).code).toBe(2);
  });
});

describe('sluice metrics, prune, doctor, roles', () => {
  it('metrics prints the Prometheus text format', async () => {
    await q(`SELECT sluice.enqueue('m.job', '{}', queue => 'mq')`);
    const r = await cli('metrics');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# TYPE sluice_jobs gauge');
    expect(r.stdout).toContain('sluice_jobs{queue="mq",name="m.job",state="available"} 1');
  });

  it('metrics --port serves /metrics until interrupted', async () => {
    const port = await freePort();
    const run = spawnSluiceCli(['metrics', '--port', String(port), '--host', '127.0.0.1'], { DATABASE_URL: db.url });
    await waitUntil(() => run.stdout().includes('serving metrics'), { what: 'server up' });
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toContain('sluice_queue_oldest_waiting_seconds{queue="mq"}');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });

  it('prune applies retention and reports what it did', async () => {
    await q(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed) VALUES ('mq', now() - interval '30 days', 0, 1)`);
    const r = await cli('prune', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ran: true, metricsRowsDeleted: 1, partitionsDropped: [] });
  });

  it('prune with a --metrics-retention-ms past 100 years exits 2 before any maintenance step has run', async () => {
    const partitions = () => count(db.pool, `SELECT count(*) n FROM sluice.history_partitions()`);
    const before = await partitions();
    const r = await inProcess('prune', '--partitions-ahead-days', '60', '--metrics-retention-ms', '9007199254740991');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('--metrics-retention-ms');
    expect(await partitions()).toBe(before);
  });

  it('runMaintenance refuses options a step cannot use before the first step, with a ValidationError naming the option', async () => {
    const partitions = () => count(db.pool, `SELECT count(*) n FROM sluice.history_partitions()`);
    const before = await partitions();
    for (const [options, field] of [
      [{ partitionsAheadDays: 60, metricsRetentionMs: Number.MAX_SAFE_INTEGER }, 'maintenance.metricsRetentionMs'],
      [{ partitionsAheadDays: 60, batchSize: 0 }, 'maintenance.batchSize'],
      [{ partitionsAheadDays: 400 }, 'maintenance.partitionsAheadDays'],
      [{ partitionsAheadDays: 60, metricsRetentionMS: 1000 }, 'maintenance'],
    ] as const) {
      await expect(runMaintenance(db.pool, options as MaintenanceOptions)).rejects.toMatchObject({ name: 'ValidationError', field: expect.stringContaining(field) });
    }
    expect(await partitions()).toBe(before);
  });

  it('doctor exits 0 when healthy and 3 when a check warns', async () => {
    const ok = await cli('doctor');
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain('WARN');
    const d = new Date();
    const tomorrow = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)).toISOString().slice(0, 10);
    await q(`DROP TABLE sluice.job_history_${tomorrow.replaceAll('-', '')}`);
    const warn = await cli('doctor', '--json');
    expect(warn.code).toBe(3);
    expect(JSON.parse(warn.stdout).checks).toContainEqual(expect.objectContaining({ check: 'partitions', status: 'warn' }));
    expect((await inProcess('prune')).code).toBe(0);
    expect((await inProcess('doctor')).code).toBe(0);
  });

  it('roles prints the script, with chosen names set on top', async () => {
    const plain = await cli('roles');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain("'sluice_runtime'");
    expect(plain.stdout).toContain('GRANT SELECT ON ALL TABLES IN SCHEMA sluice');
    const named = await inProcess('roles', '--owner', 'app_owner', '--readonly', 'grafana');
    expect(named.stdout.split('\n').slice(0, 2)).toEqual(["SET sluice.owner_role = 'app_owner';", "SET sluice.readonly_role = 'grafana';"]);
  });
});
