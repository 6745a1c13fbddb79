// `sluice dashboard` as a user runs it: a real process that refuses to start
// without a way to sign in (exit 2), and serves the dashboard when given one.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sluiceCli, spawnSluiceCli, type RunningCli } from './helpers/cli.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { DashboardClient } from './fixtures/dashboard-http.js';

const TOKEN = 'cli-token-0123456789abcdef';
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ cli: RunningCli; url: string }> {
  const cli = spawnSluiceCli(['dashboard', '--port', '0', '--database-url', db.url, ...args], env);
  const line = await waitUntil(() => /dashboard on (http:\/\/\S+?)\/(\s|$)/.exec(cli.stdout()), { timeoutMs: 30_000, what: 'the dashboard to listen' });
  return { cli, url: line[1]! };
}

async function stop(cli: RunningCli): Promise<number | null> {
  cli.child.kill('SIGTERM');
  return cli.exited;
}

describe('sluice dashboard', () => {
  it('refuses to start without a way to sign in, or with a weak or conflicting one: exit 2, nothing served', async () => {
    const cases: [string[], RegExp][] = [
      [[], /--token: give --token-file .*, or --user and --password-file, or --insecure-local/],
      [['--token-file', '/nonexistent/token'], /--token-file: cannot read \/nonexistent\/token: ENOENT/],
      [['--token', TOKEN, '--token-file', '/dev/null'], /--token-file: give --token or --token-file, not both/],
      [['--token', 'short'], /--token: must be at least 16 characters/],
      [['--user', 'ops'], /--password: give both --user and --password/],
      [['--token', TOKEN, '--insecure-local'], /give only one of/],
      [['--insecure-local', '--host', '0.0.0.0'], /--host: --insecure-local listens on 127\.0\.0\.1 only/],
      [['--token', TOKEN, '--port', 'eighty'], /--port: must be an integer/],
      [['--token', TOKEN, '--payloads', 'maybe'], /--payloads: must be show or hide/],
      [['--token', TOKEN, '--bogus'], /--bogus/],
    ];
    for (const [args, message] of cases) {
      const res = await sluiceCli(['dashboard', '--database-url', db.url, ...args], { SLUICE_DASHBOARD_TOKEN: '' });
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(message);
    }
    const help = await sluiceCli(['dashboard', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--insecure-local');
    expect(help.stdout).toMatch(/--token T, --password P\n.*any local user can read it there \(ps\)/);
  });

  it('serves with a token: sign-in required, then pages load; SIGTERM stops it', async () => {
    const { cli, url } = await serve(['--token', TOKEN]);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const client = new DashboardClient(url);
      expect((await client.get('/')).status).toBe(303);
      expect((await client.signIn({ token: 'wrong-token-0123456789abcdef' })).status).toBe(401);
      expect((await client.signIn({ token: TOKEN })).status).toBe(303);
      for (const path of ['/', '/jobs', '/dlq', '/queues', '/cron', '/workers']) expect((await client.get(path)).status, path).toBe(200);
    } finally {
      expect(await stop(cli)).toBe(0);
    }
  });

  it('takes the token from SLUICE_DASHBOARD_TOKEN, so it stays out of the process list', async () => {
    const { cli, url } = await serve([], { SLUICE_DASHBOARD_TOKEN: TOKEN });
    try {
      expect((await new DashboardClient(url).signIn({ token: TOKEN })).status).toBe(303);
    } finally {
      await stop(cli);
    }
  });

  it('takes the token and the password from files, so they stay out of the process list', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-dash-'));
    const PASSWORD = 'file-password-4d2b9a';
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'password'), `${PASSWORD}\n`, { mode: 0o600 });
    try {
      const byToken = await serve(['--token-file', join(dir, 'token')]);
      try {
        expect((await new DashboardClient(byToken.url).signIn({ token: TOKEN })).status).toBe(303);
        expect(readFileSync(`/proc/${byToken.cli.child.pid}/cmdline`, 'utf8')).not.toContain(TOKEN);
      } finally {
        await stop(byToken.cli);
      }
      const byPassword = await serve(['--user', 'ops', '--password-file', join(dir, 'password')]);
      try {
        expect((await new DashboardClient(byPassword.url).signIn({ user: 'ops', password: PASSWORD })).status).toBe(303);
      } finally {
        await stop(byPassword.cli);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('--insecure-local serves without sign-in on 127.0.0.1; --read-only shows no action', async () => {
    const { cli, url } = await serve(['--insecure-local', '--read-only']);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(cli.stdout()).toContain('no sign-in');
      const res = await fetch(`${url}/queues`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('read-only');
      expect((await fetch(`${url}/queues/x/pause`, { method: 'POST' })).status).toBe(403);
    } finally {
      await stop(cli);
    }
  });
});
