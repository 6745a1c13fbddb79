// As root, with the checkout inside a directory only root may enter (a
// container's /root, any fresh `mktemp -d`): PostgreSQL runs as the
// `postgres` user, which cannot reach node_modules there. `pnpm demo` must
// still run, and where the server cannot run, fail with a named error that
// says what to do, never an unhandled EACCES.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run } from './helpers/install.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('embedded-postgres-root tests skipped: they need root (the failure they cover happens only as root)');

// The parts of a checkout the demo needs, hard-linked (instant, same files).
const CHECKOUT_ENTRIES = ['package.json', 'pnpm-workspace.yaml', 'tsconfig.base.json', 'tsconfig.json', 'drizzle', 'packages', 'node_modules'];

let privateDir: string;
let checkout: string;
const cleanups: (() => void)[] = [];

beforeAll(() => {
  if (!isRoot) return;
  // Inside the repository so hard links stay on one file system.
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  privateDir = mkdtempSync(join(ROOT, '.tmp', 'private-'));
  chmodSync(privateDir, 0o700);
  cleanups.push(() => rmSync(privateDir, { recursive: true, force: true }));
  checkout = join(privateDir, 'checkout');
  mkdirSync(checkout);
  const copy = spawnSync('cp', ['-al', ...CHECKOUT_ENTRIES.map((e) => join(ROOT, e)), checkout], { encoding: 'utf8' });
  if (copy.status !== 0) throw new Error(`cp -al failed: ${copy.stderr}`);
});

afterAll(() => {
  for (const fn of cleanups.reverse()) fn();
});

/** A temp directory of the given mode: where the binaries are copied and the data directory lives. */
function tempDir(mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tmpdir-'));
  chmodSync(dir, mode);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function demo(tmp: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, SLUICE_LOG_LEVEL: 'silent' };
  delete env.DATABASE_URL;
  return run('npx', ['-y', 'pnpm@10', 'demo'], { cwd: checkout, env, timeoutMs: 240_000 });
}

describe.skipIf(!isRoot)('embedded PostgreSQL as root, checkout in a 0700 directory', () => {
  it('`pnpm demo` runs to the end', async () => {
    const r = await demo(tempDir(0o755));
    expect(r.stderr).not.toContain('EACCES');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('✓ embedded PostgreSQL stopped');
    expect(r.stdout).toMatch(/PostgreSQL 17\.\d+: an embedded PostgreSQL/);
  }, 300_000);

  it('with a temp directory the postgres user cannot enter, fails with EmbeddedPostgresError saying what to do', async () => {
    const r = await demo(tempDir(0o700));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('EmbeddedPostgresError');
    expect(r.stderr).toContain('cannot run');
    expect(r.stderr).toContain('TMPDIR');
    expect(r.stderr).not.toMatch(/spawn \S+ EACCES/);
  }, 300_000);
});
