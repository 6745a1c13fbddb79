// The packages as a user gets them: packed by pnpm (which builds them and
// rewrites workspace: versions), installed by npm into an app outside the
// workspace, run by plain node (this machine's, and Node 24 from npm's
// `node` package, cached under .tmp/).
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const APP_FILES = fileURLToPath(new URL('../fixtures/install-app', import.meta.url));
/** docker-compose.yml's example worker, run here from the installed package too. */
export const COMPOSE_WORKER = join(ROOT, 'examples', 'compose', 'worker.mjs');
const NODE24_CACHE = join(ROOT, '.tmp', 'node24');
const NPM_QUIET = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never rejects (the code says how it went). */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

async function mustRun(what: string, command: string, args: string[], cwd: string): Promise<RunResult> {
  const r = await run(command, args, { cwd });
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `pnpm pack` of sluice, then of the dashboard (it builds against sluice's declarations). */
export async function packPackages(into: string): Promise<{ sluice: string; dashboard: string }> {
  for (const pkg of ['sluice', 'dashboard']) {
    await mustRun(`pnpm pack ${pkg}`, 'npx', ['-y', 'pnpm@10', 'pack', '--pack-destination', into], join(ROOT, 'packages', pkg));
  }
  const tarballs = readdirSync(into);
  const find = (re: RegExp) => join(into, tarballs.find((f) => re.test(f)) ?? '');
  return { sluice: find(/^sluice-\d.*\.tgz$/), dashboard: find(/^sluice-dashboard-.*\.tgz$/) };
}

/**
 * A fresh app in the system's temp directory with the tarballs and the peers
 * a user installs (no drizzle-orm: sluice must not need it), plus TypeScript
 * for the type check.
 */
export async function installApp(tarballs: { sluice: string; dashboard: string }): Promise<string> {
  const app = mkdtempSync(join(tmpdir(), 'sluice-install-app-'));
  cpSync(APP_FILES, app, { recursive: true });
  cpSync(COMPOSE_WORKER, join(app, 'compose-worker.mjs'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'install-app', private: true, type: 'module' }, null, 2));
  await mustRun(
    'npm install',
    'npm',
    ['install', ...NPM_QUIET, tarballs.sluice, tarballs.dashboard, 'pg@^8.16.0', 'zod@^4.1.0', 'typescript@~5.9.0', '@types/pg', '@types/node@^20'],
    app,
  );
  return app;
}

/** Node 24's binary from npm's `node` package, installed once into .tmp/node24. */
export async function node24(): Promise<string> {
  const bin = join(NODE24_CACHE, 'node_modules', 'node', 'bin', 'node');
  if (existsSync(bin) && (await run(bin, ['--version'])).stdout.startsWith('v24.')) return bin;
  await mustRun('npm install node@24', 'npm', ['install', ...NPM_QUIET, '--prefix', NODE24_CACHE, '--no-save', 'node@24'], ROOT);
  return bin;
}
