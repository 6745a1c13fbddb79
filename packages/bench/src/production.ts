// `pnpm bench:production`: the production-conditions scenarios, each system
// in worker processes of its own at its default options. Progress goes to
// stderr, the report to stdout and to results/<date>-production.md.
//
//   pnpm bench:production [--only idle] [--systems sluice,graphile,pgboss] [--processes 1,8] [--seconds 40]
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { idle, type IdleResult } from './production/idle.js';
import type { SystemKey } from './systems/types.js';

const SYSTEMS: SystemKey[] = ['sluice', 'graphile', 'pgboss'];
const SCENARIOS = ['idle'] as const;

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    systems: { type: 'string' },
    processes: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const only = (values.only?.split(',') ?? [...SCENARIOS]) as (typeof SCENARIOS)[number][];
const systems = (values.systems?.split(',') ?? SYSTEMS) as SystemKey[];
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown system ${s}`);
for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`--only: unknown scenario ${s}`);
const processCounts = (values.processes ?? '1,8').split(',').map(Number);
const seconds = Number(values.seconds ?? 40);
if (seconds < 30) throw new Error('--seconds: at least 30');

const lines: string[] = [];
const out = (s: string) => {
  lines.push(s);
  process.stdout.write(`${s}\n`);
};
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
out(`# Production scenarios, ${new Date().toISOString()}`);
out('');
out(`Load average at start: ${load()} (2 cores shared with other work: figures are noisy).`);

if (only.includes('idle')) {
  const results: IdleResult[] = [];
  for (const system of systems) {
    for (const n of processCounts) {
      process.stderr.write(`idle ${system} x${n} ... `);
      const r = await idle(system, n, seconds);
      process.stderr.write(`${r.txPerS.toFixed(2)} tx/s, ${r.connectionsAvg.toFixed(1)} connections (load ${load()})\n`);
      results.push(r);
    }
  }
  out('');
  out(`## Idle cost (${seconds} s window after 15 s settling, empty database, default options)`);
  out('');
  out('| system | processes | tx/s | tx/s per process | connections (avg / max) | connections per process |');
  out('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    out(
      `| ${r.system} | ${r.processes} | ${r.txPerS.toFixed(2)} | ${r.txPerSPerProcess.toFixed(2)} | ${r.connectionsAvg.toFixed(1)} / ${r.connectionsMax} | ${r.connectionsPerProcess.toFixed(2)} |`,
    );
  }
  // With one leader, what each further process adds is the follower's cost.
  for (const system of systems) {
    const [one, many] = [Math.min(...processCounts), Math.max(...processCounts)].map((n) => results.find((r) => r.system === system && r.processes === n)!);
    if (one && many && many.processes > one.processes) {
      const extra = many.processes - one.processes;
      out(
        `- ${system}: one process ${one.txPerS.toFixed(2)} tx/s, ${one.connectionsAvg.toFixed(1)} connections; each further process ` +
          `${((many.txPerS - one.txPerS) / extra).toFixed(2)} tx/s, ${((many.connectionsAvg - one.connectionsAvg) / extra).toFixed(2)} connections`,
      );
    }
  }
}
out('');
out(`Load average at end: ${load()}.`);
const file = new URL(`../results/${new Date().toISOString().slice(0, 10)}-production.md`, import.meta.url);
await writeFile(file, `${lines.join('\n')}\n`);
process.stderr.write(`written: ${file.pathname}\n`);
