// Runs a test fixture (or any command) in its own process and follows its
// stdout lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Characters of a child's output kept for failure messages. */
const OUTPUT_KEEP = 20_000;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  process: ChildProcess;
  pid: number;
  /** Every stdout line so far. */
  lines: string[];
  /** Everything written to stderr. */
  stderr(): string;
  /** The latest stdout and stderr text, for a failure message. */
  output(): string;
  /** How it ended, once it has. */
  exit: ChildExit | null;
  /** Resolves with the exit code (null when a signal ended it). */
  exited: Promise<number | null>;
  waitForLine(match: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** `script` is relative to the repository root; SLUICE_LOG_LEVEL is warn unless `env` says otherwise. */
export function spawnFixture(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  return spawnLines(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...process.env, SLUICE_LOG_LEVEL: 'warn', ...env } });
}

/** Any command, followed line by line on stdout. */
export function spawnLines(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Child {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let output = '';
  const keep = (s: string) => {
    output = (output + s).slice(-OUTPUT_KEEP);
  };
  const waiters: { match: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    keep(`${line}\n`);
    for (const w of [...waiters]) {
      const m = line.match(w.match);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    keep(s);
  });
  const handle: Child = {
    process: child,
    pid: child.pid!,
    lines,
    stderr: () => stderr,
    output: () => output,
    exit: null,
    exited: new Promise<number | null>((resolve) =>
      child.once('exit', (code, signal) => {
        handle.exit = { code, signal };
        resolve(code);
      }),
    ),
    waitForLine(match, timeoutMs = 30_000) {
      const seen = lines.map((l) => l.match(match)).find(Boolean);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${match} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
  return handle;
}
