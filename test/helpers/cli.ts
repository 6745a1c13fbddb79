// Runs the installed `sluice` binary as a user would: a real process, real
// exit code, real stdout and stderr.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SLUICE_BIN = fileURLToPath(new URL('../../packages/sluice/bin/sluice.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sluiceCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SLUICE_BIN, ...args], { env: { ...process.env, SLUICE_LOG_LEVEL: 'silent', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

export interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  exited: Promise<number | null>;
}

export function spawnSluiceCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [SLUICE_BIN, ...args], { env: { ...process.env, SLUICE_LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', () => {});
  return { child, stdout: () => out, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}
