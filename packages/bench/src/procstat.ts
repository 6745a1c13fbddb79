// CPU time of processes from /proc (Linux only): utime + stime in clock ticks.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let tck: number | undefined;
export function clockTicks(): number {
  tck ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  return tck;
}

/** [ppid, utime + stime, cutime + cstime (children it reaped)] of a pid, or undefined when it is gone. */
function stat(pid: number): [number, number, number] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; the name may hold spaces.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), Number(f[11]) + Number(f[12]), Number(f[13]) + Number(f[14])];
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a whole server: the process, every live process below it,
 * and the children it already reaped (a backend whose connection closed
 * mid-run still counts). Children of the reaped ones are not seen: a
 * postmaster's backends have none.
 */
export function treeCpuSeconds(root: number): number {
  const self = stat(root);
  if (!self) return 0;
  let ticks = self[1] + self[2];
  for (const pid of processTree(root)) if (pid !== root) ticks += stat(pid)?.[1] ?? 0;
  return ticks / clockTicks();
}

/** CPU seconds of each pid given. */
export function cpuSeconds(pids: Iterable<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    const s = stat(pid);
    if (s) out.set(pid, s[1] / clockTicks());
  }
  return out;
}

/** A pid and every process below it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (!s) continue;
    const list = children.get(s[0]) ?? [];
    list.push(Number(name));
    children.set(s[0], list);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Seconds of CPU between two snapshots; a pid absent from `before` started during the window. */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

/** Whole-machine busy and total jiffies from /proc/stat, for how loaded the machine was. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = line[3]! + (line[4] ?? 0);
  return { busy: total - idle, total };
}
