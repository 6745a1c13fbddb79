// `sluice worker --processes N`: N worker processes under a supervisor that
// restarts a crashed child, and stops them all gracefully on SIGTERM.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { Sluice } from '../packages/sluice/src/index.js';
import { Supervisor } from '../packages/sluice/src/supervisor.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { hashJob } from './fixtures/supervised-handlers.js';

let db: TestDb;
const pgLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;
/**
 * The supervisor logs in as a role of its own, whose password has characters a
 * URL must encode: the server under test may trust every login or ask for a
 * password, and either way the children must get in with the URL it was given.
 */
const login = `t_sup_${randomBytes(3).toString('hex')}`;
const PASSWORD = `pw-in-argv-${randomBytes(3).toString('hex')} @:/?#%&é`;
let supervisorUrl: string;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`CREATE ROLE ${login} LOGIN SUPERUSER PASSWORD ${pgLiteral(PASSWORD)}`);
  const u = new URL(db.url);
  u.username = login;
  u.password = encodeURIComponent(PASSWORD);
  supervisorUrl = u.toString();
});
afterAll(async () => {
  await db.drop();
  const admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${login}`);
  await admin.end();
});

const alivePids = async () =>
  (await db.pool.query<{ pid: number }>(`SELECT pid FROM sluice.workers WHERE heartbeat_at > now() - interval '3 s' ORDER BY pid`)).rows.map((r) => r.pid);

const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');

it('runs N worker processes, restarts one that crashes, and stops them all on SIGTERM', async () => {
  const supervisor = spawn(
    process.execPath,
    ['packages/sluice/bin/sluice.js', 'worker', 'test/fixtures/supervised-handlers.ts', '--processes', '2', '--concurrency', '2', '--database-url', supervisorUrl],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' } },
  );
  const exited = new Promise<number | null>((r) => supervisor.once('exit', (code) => r(code)));
  try {
    const first = await waitUntil(async () => {
      const pids = await alivePids();
      return pids.length === 2 ? pids : null;
    }, { timeoutMs: 30_000, what: 'two worker processes' });
    expect(first).not.toContain(supervisor.pid);
    // The children got the database URL in their environment, not on their command line (ps shows it to everyone).
    for (const pid of first) {
      expect(commandLine(pid)).toContain('supervised-handlers');
      expect(commandLine(pid)).not.toContain(PASSWORD);
      expect(commandLine(pid)).not.toContain(encodeURIComponent(PASSWORD));
    }

    process.kill(first[0]!, 'SIGKILL');
    const replaced = await waitUntil(async () => {
      const rows = (await db.pool.query<{ pid: number }>('SELECT pid FROM sluice.workers ORDER BY pid')).rows.map((r) => r.pid);
      const fresh = rows.filter((p) => !first.includes(p));
      return fresh.length === 1 ? fresh : null;
    }, { timeoutMs: 30_000, what: 'a replacement process' });
    expect(replaced[0]).not.toBe(first[0]);

    const sluice = new Sluice({ pool: db.pool });
    await sluice.enqueueMany(hashJob, Array.from({ length: 200 }, (_, n) => ({ n })));
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'cpu'`)) === 200, { timeoutMs: 30_000, what: 'jobs done' });

    supervisor.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Every child deregistered on its way out (the killed one's row is left to the reaper).
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.workers WHERE pid <> $1`, [first[0]])).toBe(0);
  } finally {
    if (supervisor.exitCode === null) supervisor.kill('SIGKILL');
  }
}, 90_000);

it('a child that exits 2 (it refused its arguments) is not restarted: the others are stopped and the supervisor gives up with 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sup-'));
  // Each start is recorded; the first child to start keeps running, the other refuses as `sluice worker` does.
  const child = `const fs = require('node:fs'); const d = process.argv[1]; fs.appendFileSync(d + '/starts', 'x');
    try { fs.mkdirSync(d + '/first'); setInterval(() => {}, 1000); } catch { process.exit(2); }`;
  const supervisor = new Supervisor({ processes: 2, script: '-e', args: [child, dir], logger: pino({ level: 'silent' }), stopTimeoutMs: 5_000 });
  supervisor.start();
  try {
    const outcome = await Promise.race([supervisor.gaveUp, new Promise<string>((r) => setTimeout(() => r('still restarting after 15 s'), 15_000))]);
    expect(outcome).toBe(2);
    expect(supervisor.pids, 'the running child was stopped').toEqual([]);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(readFileSync(join(dir, 'starts'), 'utf8'), 'no child was started again').toBe('xx');
  } finally {
    supervisor.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
