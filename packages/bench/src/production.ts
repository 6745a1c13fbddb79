// `pnpm bench:production`: the production-conditions scenarios, each system
// in worker processes of its own at its default options. Progress goes to
// stderr, the report to stdout and to results/<date>-production.md.
//
//   pnpm bench:production [--only idle,vacuum,many] [--systems sluice,graphile,pgboss]
//     idle:   [--processes 1,8] [--seconds 40]
//     vacuum: [--rates 1000] [--vacuum-seconds 90] [--sluice-concurrency N --sluice-prefetch N] (default: sluice's defaults)
//     many:   [--many-processes 50] [--many-concurrency 2] [--many-jobs 100000] [--many-rate 2000]
//             [--baseline-concurrency 100] [--many-cap-seconds 240] [--many-warmup-jobs 10000, not counted; 0: none]
//             (not in the default set: it needs a server of its own,
//             BENCH_DATABASE_URL, with max_connections for the processes' pools)
//     fanout: [--fanout-listeners 0,1,50] [--fanout-rate 100] [--fanout-seconds 20] (not in the default set:
//             it reads the whole server's CPU, so run it against a server nothing else uses)
//     crash:  [--crash-concurrency 10] [--crash-hold-ms 2000] [--crash-cap-seconds 120]
//     restart: [--restart-modes immediate,fast] [--restart-rate 200] [--restart-seconds 60] [--restart-concurrency 10]
//             (not in the default set: it restarts its server, so it needs one of its own, BENCH_DATABASE_URL,
//             and that server's data directory, BENCH_PG_DATA)
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { fanout, type FanoutResult } from './production/fanout.js';
import { idle, type IdleResult } from './production/idle.js';
import { many, type ManyResult } from './production/many.js';
import { restartRecovery, type LatencyWindow, type RestartResult } from './production/restart.js';
import { serverControl, type RestartMode } from './production/server-control.js';
import { workerCrash, type CrashResult } from './production/worker-crash.js';
import { vacuumHeldBack, type VacuumResult, type WindowLatency } from './production/vacuum.js';
import type { SystemKey } from './systems/types.js';

const SYSTEMS: SystemKey[] = ['sluice', 'graphile', 'pgboss'];
const SCENARIOS = ['idle', 'vacuum', 'many', 'fanout', 'restart', 'crash'] as const;
const DEFAULT_SCENARIOS = ['idle', 'vacuum'];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    systems: { type: 'string' },
    processes: { type: 'string' },
    seconds: { type: 'string' },
    rates: { type: 'string' },
    'vacuum-seconds': { type: 'string' },
    'sluice-concurrency': { type: 'string' },
    'sluice-prefetch': { type: 'string' },
    'many-processes': { type: 'string' },
    'many-concurrency': { type: 'string' },
    'many-jobs': { type: 'string' },
    'many-rate': { type: 'string' },
    'baseline-concurrency': { type: 'string' },
    'many-cap-seconds': { type: 'string' },
    'many-warmup-jobs': { type: 'string' },
    'fanout-listeners': { type: 'string' },
    'fanout-rate': { type: 'string' },
    'fanout-seconds': { type: 'string' },
    'crash-concurrency': { type: 'string' },
    'crash-hold-ms': { type: 'string' },
    'crash-cap-seconds': { type: 'string' },
    'restart-modes': { type: 'string' },
    'restart-rate': { type: 'string' },
    'restart-seconds': { type: 'string' },
    'restart-concurrency': { type: 'string' },
  },
});
const only = (values.only?.split(',') ?? DEFAULT_SCENARIOS) as (typeof SCENARIOS)[number][];
const systems = (values.systems?.split(',') ?? SYSTEMS) as SystemKey[];
for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown system ${s}`);
for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`--only: unknown scenario ${s}`);
const processCounts = (values.processes ?? '1,8').split(',').map(Number);
const seconds = Number(values.seconds ?? 40);
if (seconds < 30) throw new Error('--seconds: at least 30');
const rates = (values.rates ?? '1000').split(',').map(Number);
const vacuumSeconds = Number(values['vacuum-seconds'] ?? 90);
if (!(vacuumSeconds >= 30)) throw new Error('--vacuum-seconds: at least 30');
const sluiceOptions: Record<string, number> = {};
if (values['sluice-concurrency']) sluiceOptions.concurrency = Number(values['sluice-concurrency']);
if (values['sluice-prefetch']) sluiceOptions.prefetch = Number(values['sluice-prefetch']);
const optionsLabel = (system: SystemKey) =>
  system === 'sluice' && Object.keys(sluiceOptions).length ? ` (${Object.entries(sluiceOptions).map(([k, v]) => `${k} ${v}`).join(', ')})` : '';

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
  out(`## Idle cost (${seconds} s window after 45 s settling, empty database, default options)`);
  out('');
  out('| system | processes | tx/s | tx/s per process | connections (avg / max) | connections per process | most held by one process: the first / any other |');
  out('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const others = r.processMax.length > 1 ? String(Math.max(...r.processMax.slice(1))) : '–';
    out(
      `| ${r.system} | ${r.processes} | ${r.txPerS.toFixed(2)} | ${r.txPerSPerProcess.toFixed(2)} | ${r.connectionsAvg.toFixed(1)} / ${r.connectionsMax} | ${r.connectionsPerProcess.toFixed(2)} | ${r.processMax[0] ?? 0} / ${others} |`,
    );
  }
  // With one leader, what each further process adds is the follower's cost.
  for (const system of systems) {
    const [one, many] = [Math.min(...processCounts), Math.max(...processCounts)].map((n) => results.find((r) => r.system === system && r.processes === n)!);
    if (one && many && many.processes > one.processes) {
      const extra = many.processes - one.processes;
      out(
        `- ${system}: one process ${one.txPerS.toFixed(2)} tx/s, ${one.connectionsAvg.toFixed(1)} connections; each further process ` +
          `${((many.txPerS - one.txPerS) / extra).toFixed(2)} tx/s, ${((many.connectionsAvg - one.connectionsAvg) / extra).toFixed(2)} connections ` +
          `(read by process with ${many.processes}: the one holding most ${many.processMax[0]}, every other at most ${Math.max(...many.processMax.slice(1))})`,
      );
    }
  }
}
if (only.includes('vacuum')) {
  const results: VacuumResult[] = [];
  for (const rate of rates) {
    for (const system of systems) {
      process.stderr.write(`vacuum ${system} ${rate}/s ... `);
      const r = await vacuumHeldBack(system, rate, vacuumSeconds, system === 'sluice' ? sluiceOptions : {});
      process.stderr.write(`last 15 s p99 ${r.last.p99Ms} ms, ${r.left} left (load ${load()})\n`);
      results.push(r);
    }
  }
  const ms = (w: WindowLatency) => (w.p50Ms === null ? 'none started' : `${w.p50Ms} / ${w.p99Ms} ms (${w.started})`);
  out('');
  out(`## Vacuum held back (REPEATABLE READ snapshot open from the start; ${vacuumSeconds} s at a fixed rate; one worker process, default options unless said)`);
  out('');
  out('| system | rate/s | offered (in s) | enqueue call p50 / p99 | first 15 s p50 / p99 (started) | last 15 s p50 / p99 (started) | left at the end | dead tuples |');
  out('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    out(`| ${r.system}${optionsLabel(r.system)} | ${r.rate} | ${r.offered} (${r.offerTookS}) | ${r.callP50Ms} / ${r.callP99Ms} ms | ${ms(r.first)} | ${ms(r.last)} | ${r.left} | ${r.deadTuples} |`);
  }
}
if (only.includes('many')) {
  const shape = {
    processes: Number(values['many-processes'] ?? 50),
    concurrency: Number(values['many-concurrency'] ?? 2),
    jobs: Number(values['many-jobs'] ?? 100_000),
    rate: Number(values['many-rate'] ?? 2_000),
    capSeconds: Number(values['many-cap-seconds'] ?? 240),
    sluiceOptions,
    warmupJobs: Number(values['many-warmup-jobs'] ?? 10_000),
  };
  // The baseline keeps sluice's defaults: --sluice-* options shape the many processes only.
  const baseline = { ...shape, processes: 1, concurrency: Number(values['baseline-concurrency'] ?? 100), sluiceOptions: {} };
  const results: ManyResult[] = [];
  for (const system of systems) {
    for (const s of [baseline, shape]) {
      process.stderr.write(`many ${system} ${s.processes} x ${s.concurrency} ... `);
      const r = await many(system, s);
      process.stderr.write(`${r.seconds.toFixed(1)} s, ${r.dbCpuUsPerJob.toFixed(0)} µs db CPU a job, ${r.emptyClaims} of ${r.claims} claims empty (load ${load()})\n`);
      results.push(r);
    }
  }
  out('');
  out(
    `## Many processes (${shape.jobs} jobs enqueued at ${shape.rate}/s, one bulk call every 10 ms, into workers already running; ` +
      `no-op handler; database CPU of the whole server less the producer's backends, per job run; stopped at ${shape.capSeconds} s; ` +
      (shape.warmupJobs > 0 ? `after a warm-up of ${shape.warmupJobs} jobs through the same processes, not counted)` : 'no warm-up: the sessions\' first statements are counted)'),
  );
  out('');
  out('| system | processes × concurrency | seconds | left at the cap | ran once / twice+ / never | jobs per process min / median / max | db CPU µs a job | statements a job | claims | empty claims | empty claims a job | load |');
  out('|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const o = r.system === 'pgboss' || (r.system === 'sluice' && r.processes > 1) ? ` (${JSON.stringify(r.options)})` : '';
    out(
      `| ${r.system}${o} | ${r.processes} × ${r.concurrency} | ${r.seconds.toFixed(1)} | ${r.left} | ${r.ranOnce} / ${r.ranTwiceOrMore} / ${r.neverRan} | ` +
        `${r.perProcess.min} / ${r.perProcess.median} / ${r.perProcess.max} | ${r.dbCpuUsPerJob.toFixed(0)} | ${(r.statements / r.jobs).toFixed(2)} | ${r.claims} | ${r.emptyClaims} | ${(r.emptyClaims / r.jobs).toFixed(2)} | ${r.loadAverage.toFixed(1)} |`,
    );
  }
  for (const system of systems) {
    const [one, spread] = [baseline, shape].map((s) => results.find((r) => r.system === system && r.processes === s.processes)!);
    if (one && spread) out(`- ${system}: database CPU a job, ${spread.processes} processes against one: ${(spread.dbCpuUsPerJob / one.dbCpuUsPerJob).toFixed(2)}×`);
  }
}
if (only.includes('fanout')) {
  const listenerCounts = (values['fanout-listeners'] ?? '0,1,50').split(',').map(Number);
  const rate = Number(values['fanout-rate'] ?? 100);
  const fanoutSeconds = Number(values['fanout-seconds'] ?? 20);
  const results: FanoutResult[] = [];
  for (const n of listenerCounts) {
    process.stderr.write(`fanout ${n} listeners ... `);
    const r = await fanout(n, rate, fanoutSeconds);
    process.stderr.write(`${r.serverCpuUsPerNotification.toFixed(0)} µs server CPU a notification (load ${load()})\n`);
    results.push(r);
  }
  const none = results.find((r) => r.listeners === 0);
  out('');
  out(`## Notification fan-out (${rate} NOTIFYs a second for ${fanoutSeconds} s, plain sessions LISTENing in the same database; whole server's CPU)`);
  out('');
  out('| listeners | notifications | delivered | server CPU µs a notification | added a listener, µs a notification |');
  out('|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const perListener = none && r.listeners > 0 ? ((r.serverCpuUsPerNotification - none.serverCpuUsPerNotification) / r.listeners).toFixed(1) : '—';
    out(`| ${r.listeners} | ${r.notifications} | ${r.delivered} | ${r.serverCpuUsPerNotification.toFixed(0)} | ${perListener} |`);
  }
}
if (only.includes('restart')) {
  const server = serverControl();
  const modes = (values['restart-modes'] ?? 'immediate,fast').split(',') as RestartMode[];
  for (const m of modes) if (m !== 'immediate' && m !== 'fast') throw new Error(`--restart-modes: unknown mode ${m}`);
  const base = {
    rate: Number(values['restart-rate'] ?? 200),
    seconds: Number(values['restart-seconds'] ?? 60),
    concurrency: Number(values['restart-concurrency'] ?? 10),
  };
  if (!(base.seconds >= 30)) throw new Error('--restart-seconds: at least 30');
  const results: RestartResult[] = [];
  for (const mode of modes) {
    for (const system of systems) {
      process.stderr.write(`restart ${system} ${mode} ... `);
      const r = await restartRecovery(system, { ...base, mode }, server);
      process.stderr.write(
        `outage ${r.outageMs} ms, first start ${r.firstStartAfterMs ?? 'none'} ms after, ${r.neverRan} never ran, ${r.ranTwiceOrMore} twice (load ${load()})\n`,
      );
      results.push(r);
    }
  }
  const ms = (w: LatencyWindow) => (w.p50Ms === null ? 'none started' : `${w.p50Ms} / ${w.p99Ms} ms (${w.started})`);
  out('');
  out(
    `## Database restart (${base.rate} jobs/s for ${base.seconds} s, one worker process at concurrency ${base.concurrency}; ` +
      'the server stopped and started again a third of the way in; the producer sends a failed call again until it succeeds)',
  );
  out('');
  out(
    '| system | stop mode | outage | first job started after the server was ready | 10 s before: p50 / p99 (started) | 10 s after: p50 / p99 (started) | max latency | ran once / twice+ / never | producer calls failed (their jobs; of them ran twice) | left | worker process lived |',
  );
  out('|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|');
  for (const r of results) {
    out(
      `| ${r.system} | ${r.mode} | ${r.outageMs} ms | ${r.firstStartAfterMs === null ? 'none' : `${r.firstStartAfterMs} ms`} | ${ms(r.before)} | ${ms(r.after)} | ${r.maxLatencyMs} ms | ` +
        `${r.ranOnce} / ${r.ranTwiceOrMore} / ${r.neverRan} | ${r.failedCalls} (${r.retriedJobs}; ${r.retriedRanTwice}) | ${r.left} | ${r.workerSurvived ? 'yes' : 'no'} |`,
    );
  }
}
if (only.includes('crash')) {
  const concurrency = Number(values['crash-concurrency'] ?? 10);
  const shape = {
    concurrency,
    jobs: concurrency * 4,
    holdMs: Number(values['crash-hold-ms'] ?? 2_000),
    capSeconds: Number(values['crash-cap-seconds'] ?? 120),
  };
  const results: CrashResult[] = [];
  for (const system of systems) {
    process.stderr.write(`crash ${system} ... `);
    const r = await workerCrash(system, shape);
    process.stderr.write(`${r.rerun} of ${r.orphaned} rerun, last ${r.rerunMaxMs ?? '-'} ms after the kill (load ${load()})\n`);
    results.push(r);
  }
  out('');
  out(
    `## A worker process killed mid-job (two processes at concurrency ${shape.concurrency}, ${shape.jobs} jobs of ${shape.holdMs} ms each; ` +
      `SIGKILL to one once it has started half its slots; default options otherwise; cap ${shape.capSeconds} s after the kill)`,
  );
  out('');
  out('| system | jobs the killed process had started | started again before the cap | again after the kill: median / last | every job done after the kill | left at the cap | never started |');
  out('|---|---:|---:|---:|---:|---:|---:|');
  const s = (v: number | null) => (v === null ? '—' : `${(v / 1000).toFixed(1)} s`);
  for (const r of results) {
    out(
      `| ${r.system} | ${r.orphaned} | ${r.rerun} | ${s(r.rerunP50Ms)} / ${s(r.rerunMaxMs)} | ${r.allDoneMs === null ? 'not within the cap' : s(r.allDoneMs)} | ${r.left} | ${r.neverStarted} |`,
    );
  }
}
out('');
out(`Load average at end: ${load()}.`);
const file = new URL(`../results/${new Date().toISOString().slice(0, 16).replace(':', '')}-production-${only.join('-')}.md`, import.meta.url);
await writeFile(file, `${lines.join('\n')}\n`);
process.stderr.write(`written: ${file.pathname}\n`);
