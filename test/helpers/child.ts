// Runs a test fixture in its own Node process and follows its stdout lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  process: ChildProcess;
  lines: string[];
  waitForLine(match: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

export function spawnFixture(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return spawnLines(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...env } });
}

/** Any command, followed line by line on stdout; stderr is kept in `stderr()`. */
export function spawnLines(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Child & { stderr(): string } {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const lines: string[] = [];
  const waiters: { match: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      const m = line.match(w.match);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    lines,
    exited,
    stderr: () => stderr,
    waitForLine(match, timeoutMs = 30_000) {
      const seen = lines.map((l) => l.match(match)).find(Boolean);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${match} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}
