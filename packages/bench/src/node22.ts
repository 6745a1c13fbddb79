// graphile-worker and pg-boss require Node >= 22. On an older Node the npm
// package `node@22` supplies a real binary; we ask npx for its path once and
// then start children on it directly, so npx costs nothing per run.
import { execFileSync } from 'node:child_process';

const REQUIRED_MAJOR = 22;
let cached: string | undefined;

export function nodeMajor(version: string): number {
  return Number(version.replace(/^v/, '').split('.')[0]);
}

export function node22Path(): string {
  if (cached) return cached;
  if (process.env.BENCH_NODE22) return (cached = process.env.BENCH_NODE22);
  if (nodeMajor(process.versions.node) >= REQUIRED_MAJOR) return (cached = process.execPath);
  const path = execFileSync('npx', ['-y', `node@${REQUIRED_MAJOR}`, '-p', 'process.execPath'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
  if (nodeMajor(version) < REQUIRED_MAJOR) throw new Error(`npx node@${REQUIRED_MAJOR} gave ${version}`);
  return (cached = path);
}

export function nodeVersion(path: string): string {
  return path === process.execPath ? process.version : execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
}
