// Turns the measured samples into the markdown report and the JSON beside
// it. Only figures that came back from a child are printed; a failed step
// says so in its row.
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Facts } from './facts.js';
import type { Options } from './options.js';
import { summarize } from './stats.js';
import { soakNodeFlags } from './scenarios/soak.js';
import { PRODUCER_CONNECTIONS } from './scenarios/latency.js';
import { SCHEMA } from './systems/queries.js';
import type { SystemKey } from './systems/types.js';
import { cell, failed, field, int, ms, repsNote, table, type StepResult } from './report-format.js';
import { agingSection, cronClusterSection, resumeSection } from './report-timing.js';
import type { ScenarioKey } from './task.js';
import { variantByKey, variants } from './variants.js';

export type { StepResult } from './report-format.js';

const SYSTEM_NAMES: Record<SystemKey, string> = { sluice: 'sluice', graphile: 'graphile-worker', pgboss: 'pg-boss', bare: 'bare client' };

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

function find(results: StepResult[], scenario: ScenarioKey, variant: string, batch?: number): StepResult | undefined {
  return results.find((r) => r.scenario === scenario && r.variant === variant && (batch === undefined || r.params.batch === batch));
}

function machine(f: Facts): string {
  const s = f.settings;
  return table(
    ['what', 'value'],
    [
      ['CPU', `${f.cores} cores, ${f.cpuModel}`],
      ['memory', `${f.memoryGiB} GiB`],
      ['OS', f.os],
      ['Node', `${f.nodeSluice} (every system)`],
      ['PostgreSQL', f.postgres.split(' on ')[0]!],
      ['settings', Object.entries(s).map(([k, v]) => `${k}=${v}`).join(', ')],
      [
        'other active sessions on the server',
        `${f.otherActiveSessions.atStart} at start, ${f.otherActiveSessions.atEnd ?? '?'} at end (others' work skews figures)`,
      ],
      ['load average (1 min)', `${f.loadAverage.atStart.toFixed(1)} at start, ${f.loadAverage.atEnd?.toFixed(1) ?? '?'} at end`],
    ],
  );
}

function drainSection(o: Options, results: StepResult[]): string {
  const drains = results.filter((r) => r.scenario === 'drain');
  const rows = drains.map((r) => {
    const v = variantByKey(o.tuning, r.variant);
    const rate = field(r, 'jobsPerSecond');
    const paired = v.pairedWith ? field(find(results, 'drain', v.pairedWith), 'jobsPerSecond') : null;
    let note = '';
    if (r.result.ok && r.result.samples.some((s) => s.complete === false)) {
      const jobs = summarize(r.result.samples.map((s) => Number(s.jobs)));
      note = `time-capped at ${r.params.capSeconds} s: ${int(jobs.median)} of ${int(r.params.jobs)} jobs done`;
    }
    const vs = !v.pairedWith ? '—' : rate && paired ? `${ratio(paired.median, rate.median)} (vs ${variantByKey(o.tuning, v.pairedWith).label})` : 'n/a';
    return [r.label, cell(rate, int), vs, note];
  });
  const costRows = drains.map((r) => {
    const enq = field(r, 'enqueueWalPerJob');
    const drn = field(r, 'drainWalPerJob');
    const total = r.result.ok ? summarize(r.result.samples.map((s) => Number(s.enqueueWalPerJob) + Number(s.drainWalPerJob))) : null;
    return [
      r.label,
      cell(field(r, 'workerCpuUsPerJob'), int),
      cell(field(r, 'dbCpuUsPerJob'), int),
      cell(enq, int),
      cell(drn, int),
      cell(total, int),
      cell(field(r, 'loadAverage'), (n) => n.toFixed(1)),
    ];
  });
  const isolated = drains.every((r) => !r.result.ok || r.result.samples.every((s) => s.walIsolated === true));
  return [
    `## Drain: ${int(o.drainJobs)} queued jobs, no-op handler, one worker process`,
    '',
    table(['system (config)', 'jobs/s median (min–max)', 'sluice ÷ this', 'note'], rows),
    '',
    '### What each job cost in the same drains',
    '',
    'CPU: utime + stime per job over the timed drain, of the worker\'s process (`process.cpuUsage()`, warm-up excluded) and of ' +
      'the PostgreSQL backends of the bench database (`/proc`, the bench\'s own counting connection left out). Less sensitive ' +
      'to other load on the machine than jobs/s. WAL: bytes per job from `pg_current_wal_insert_lsn()` around the seeding ' +
      '(bulk enqueue in batches of 1,000) and around the drain (which starts right after a CHECKPOINT, so it carries the ' +
      'full-page images of every page it touches first); ' +
      (isolated
        ? 'only this database\'s records, read back with pg_waldump (other databases on the server write WAL too).'
        : '**every database on the server counted** (pg_waldump or pg_wal not readable from here): other work inflates these.'),
    '',
    table(
      ['system (config)', 'worker CPU µs/job', 'database CPU µs/job', 'WAL B/job enqueue', 'WAL B/job drain', 'WAL B/job total', 'load avg at end'],
      costRows,
    ),
  ].join('\n');
}

function enqueueSection(results: StepResult[]): string {
  const systems = [...new Set(results.filter((r) => r.group === 'enqueue').map((r) => r.variant))];
  const sluiceOne = field(find(results, 'enqueue-one', 'sluice'), 'rowsPerSecond');
  const sluiceMany = field(find(results, 'enqueue-many', 'sluice'), 'rowsPerSecond');
  const rows = systems.map((key) => {
    const one = find(results, 'enqueue-one', key)!;
    const many = find(results, 'enqueue-many', key)!;
    const o = field(one, 'rowsPerSecond');
    const m = field(many, 'rowsPerSecond');
    const isSluice = one.system === 'sluice';
    return [
      SYSTEM_NAMES[one.system],
      cell(o, int),
      isSluice ? '—' : o && sluiceOne ? ratio(sluiceOne.median, o.median) : 'n/a',
      cell(m, int),
      isSluice ? '—' : m && sluiceMany ? ratio(sluiceMany.median, m.median) : 'n/a',
    ];
  });
  const anyOne = results.find((r) => r.scenario === 'enqueue-one');
  const anyMany = results.find((r) => r.scenario === 'enqueue-many');
  return [
    '## Enqueue: one producer connection',
    '',
    `One-by-one: ${int(anyOne?.params.jobs ?? 0)} jobs, each its own transaction, awaited in turn. ` +
      `Bulk: ${int(anyMany?.params.jobs ?? 0)} jobs in calls of 1,000 (sluice enqueueMany, graphile-worker addJobs, pg-boss insert).`,
    '',
    table(['system', 'one-by-one rows/s', 'sluice ÷ this', 'bulk rows/s', 'sluice ÷ this'], rows),
  ].join('\n');
}

function ceilingSection(o: Options, results: StepResult[]): string {
  const worker = field(find(results, 'drain', 'sluice'), 'jobsPerSecond');
  const rows = results
    .filter((r) => r.scenario === 'ceiling')
    .map((r) => {
      const c = field(r, 'jobsPerSecond');
      return [String(r.params.batch), cell(c, int), worker && c ? `${((worker.median / c.median) * 100).toFixed(0)}%` : 'n/a'];
    });
  return [
    `## In-database ceiling: sluice's claim + complete SQL in a plpgsql loop, ${int(o.drainJobs)} jobs`,
    '',
    'The same statements the worker sends (read from packages/sluice/src/sql/job-leases.ts), a commit after each, no client round trip.',
    '',
    table(['claim batch', 'jobs/s median (min–max)', 'sluice worker (tuned) reaches'], rows),
  ].join('\n');
}

/** Calls starting later than this behind their schedule (p99) mean the producer could not offer the rate. */
const PRODUCER_BEHIND_MS = 20;

function latencySection(o: Options, results: StepResult[]): string {
  const rs = results.filter((r) => r.scenario === 'latency');
  const sl = rs.find((r) => r.variant === 'sluice');
  const rows = rs.map((r) => {
    const p50 = field(r, 'p50');
    const p99 = field(r, 'p99');
    const s50 = field(sl, 'p50');
    const s99 = field(sl, 'p99');
    const rate = field(r, 'ratePerSecond');
    const lag = field(r, 'lagP99');
    const behind =
      (rate && rate.median < 0.95 * o.latencyRate) || (lag && lag.median > PRODUCER_BEHIND_MS)
        ? 'producer fell behind the rate (see its lag below)'
        : '';
    return [
      r.label,
      cell(rate, int),
      cell(p50, ms),
      cell(field(r, 'p95'), ms),
      cell(p99, ms),
      cell(field(r, 'max'), ms),
      r.variant === 'sluice' ? '—' : p50 && p99 && s50 && s99 ? `${ratio(s50.median, p50.median)} / ${ratio(s99.median, p99.median)}` : 'n/a',
      behind,
    ];
  });
  const parts = rs.map((r) => [
    r.label,
    cell(field(r, 'enqueueP50'), ms),
    cell(field(r, 'enqueueP99'), ms),
    cell(field(r, 'afterCommitP50'), ms),
    cell(field(r, 'afterCommitP99'), ms),
    cell(field(r, 'lagP50'), ms),
    cell(field(r, 'lagP99'), ms),
    cell(field(r, 'fromDueP50'), ms),
    cell(field(r, 'fromDueP99'), ms),
  ]);
  return [
    `## Latency: enqueue to handler start at a steady ${o.latencyRate} jobs/s for ${o.latencySeconds} s (ms; lower is better)`,
    '',
    `Each job enqueued by its own call, its own transaction; from the enqueue call starting to the handler starting. Up to ${PRODUCER_CONNECTIONS} calls run at once so that the rate holds while commits wait for the disk; a producer that still starts its calls more than ` +
      `${PRODUCER_BEHIND_MS} ms late (p99), or reaches under 95% of the rate, is marked.`,
    '',
    table(['system (config)', 'enqueue rate reached', 'p50', 'p95', 'p99', 'max', 'sluice ÷ this (p50 / p99)', 'note'], rows),
    '',
    'The same runs split: how long the enqueue call itself took (its commit waits for the WAL flush: what the server and its disk give any producer), from the call returning to the handler starting (0 when the handler started first), how late the calls started against their schedule (the producer\'s backlog), and open loop, from when each call was due to the handler starting.',
    '',
    table(
      ['system (config)', 'enqueue call p50', 'enqueue call p99', 'committed → start p50', 'committed → start p99', 'call start lag p50', 'lag p99', 'due → start p50', 'due → start p99'],
      parts,
    ),
  ].join('\n');
}

const pct = (n: number) => `${n.toFixed(0)}%`;
const mb = (n: number) => n.toFixed(1);
const met = (ok: boolean) => (ok ? '**met**' : '**missed**');
function backlogSection(r: StepResult): string {
  const title = `## Backlog: ${int(r.params.backlog ?? 0)} jobs already in sluice.jobs, drain of the next ${int(r.params.jobs)}`;
  if (!r.result.ok) return failed(title, r);
  const empty = field(r, 'emptyJobsPerSecond')!;
  const full = field(r, 'backlogJobsPerSecond')!;
  const ratioS = field(r, 'ratio')!;
  const qs = field(r, 'queueStatsMs')!;
  const sched = field(r, 'scheduled')!;
  return [
    title,
    '',
    `Half the backlog available, half scheduled a day ahead (${int(sched.median)} scheduled), built with sluice.enqueue_many ` +
      `over generate_series in chunks of 50,000, then analyzed and checkpointed. Both drains are timed from the first handler ` +
      `call to the ${int(r.params.jobs)}th, sluice (tuned), one worker; the empty-table drain holds only the ${int(r.params.jobs)} jobs. ` +
      `queue_stats: median of 7 \`SELECT * FROM sluice.queue_stats\` on the backlog (after one untimed call). ${repsNote(r)}.`,
    '',
    table(
      ['figure', 'value', 'target'],
      [
        ['drain, empty table (jobs/s)', cell(empty, int), ''],
        ['drain, with backlog (jobs/s)', cell(full, int), ''],
        ['backlog ÷ empty', cell(ratioS, (n) => pct(n * 100)), `≥ 90%: ${met(ratioS.median >= 0.9)}`],
        ['queue_stats (ms)', cell(qs, ms), `< 50 ms: ${met(qs.median < 50)}`],
        ['backlog build (s)', cell(field(r, 'buildSeconds'), (n) => n.toFixed(1)), ''],
      ],
    ),
  ].join('\n');
}

function externalSection(r: StepResult): string {
  const title = `## External client: pgbench calling sluice.enqueue() for ${r.params.seconds} s with ${r.params.clients} clients, one sluice worker draining`;
  if (!r.result.ok) return failed(title, r);
  return [
    title,
    '',
    "pgbench runs `SELECT sluice.enqueue('bench.noop', '{\"i\": 0}'::jsonb, queue => 'bench');` (one transaction each); " +
      `the worker (sluice tuned, queue \`bench\`) counts handler calls over the same wall-clock window. ${repsNote(r)}.`,
    '',
    table(
      ['figure', 'value'],
      [
        ['pgbench enqueues/s (tps)', cell(field(r, 'pgbenchTps'), int)],
        ['worker jobs/s over the window', cell(field(r, 'workerJobsPerSecond'), int)],
        ['jobs still queued when pgbench stopped', cell(field(r, 'queuedAtEnd'), int)],
      ],
    ),
  ].join('\n');
}

function cpuSection(r: StepResult): string {
  const title = `## CPU-bound handlers: ${int(r.params.jobs)} jobs hashing ~5 ms each, \`sluice worker --processes ${r.params.processes}\``;
  if (!r.result.ok) return failed(title, r);
  const total = field(r, 'totalCpuPct')!;
  return [
    title,
    '',
    'The CLI (packages/sluice/bin/sluice.js) with src/cpu-handlers.ts, --concurrency 4 per process. CPU = utime + stime ' +
      'from /proc of the supervisor and its worker processes, and of the PostgreSQL backends of the bench database, from the ' +
      'first finished job to the last, over wall time, as % of all cores (100% = every core busy). ' +
      `Machine busy = /proc/stat over the same window, everyone's processes included. ${repsNote(r)}.`,
    '',
    table(
      ['figure', 'value', 'target'],
      [
        ['jobs/s', cell(field(r, 'jobsPerSecond'), int), ''],
        ['workers CPU (% of cores)', cell(field(r, 'workerCpuPct'), pct), ''],
        ['database backends CPU (% of cores)', cell(field(r, 'dbCpuPct'), pct), ''],
        ['workers + database', cell(total, pct), `> 80%: ${met(total.median > 80)}`],
        ['whole machine busy', cell(field(r, 'machineBusyPct'), pct), ''],
      ],
    ),
  ].join('\n');
}

const SOAK_WORKERS: Partial<Record<SystemKey, [file: string, what: string]>> = {
  sluice: ['soak-worker.mjs', "sluice (tuned) in a worker process of its own, plain node on sluice's build (dist/) with only the bench's no-op job in it"],
  bare: ['soak-bare-worker.mjs', 'the bare client in a process of its own, plain node with only node-postgres and the bench\'s bare client in it'],
};

/** The soak of sluice and, when it ran, of the bare client beside it, one column each. */
function soakSection(runs: StepResult[]): string {
  const sl = runs.find((r) => r.system === 'sluice');
  const bare = runs.find((r) => r.system === 'bare');
  const title = `## Soak: ${int(runs[0]!.params.jobs)} jobs through one ${sl ? 'sluice worker' : 'bare client'}${sl && bare ? ', beside the bare client' : ''}`;
  if (runs.length === 1 && !runs[0]!.result.ok) return failed(title, runs[0]!);
  const peak = field(sl, 'rssPeakMB');
  const warm = field(sl, 'rssWarmMB');
  const end = field(sl, 'rssEndMB');
  const barePeak = field(bare, 'rssPeakMB');
  const vsBare = peak && barePeak ? `; ${ratio(peak.median, barePeak.median)} the bare client's peak in this run` : '';
  const targets = Boolean(sl);
  const target = (text: () => string) => (!targets ? [] : peak && warm && end ? [text()] : ['n/a']);
  const values = (name: string, fmt: (n: number) => string) => runs.map((r) => cell(field(r, name), fmt));
  const row = (figure: string, cells: string[], goal = '') => [figure, ...cells, ...(targets ? [goal] : [])];
  const jobsTables = runs.map((r) => `${SCHEMA[r.system]}.jobs`).join(' / ');
  const header = runs.length === 1 && sl ? ['value'] : runs.map((r) => (r.system === 'sluice' ? r.label : SYSTEM_NAMES[r.system]));
  const workers = runs.map((r) => {
    const [file, what] = SOAK_WORKERS[r.system]!;
    return `${what} (\`src/${file}\`): \`node ${[...soakNodeFlags(), file].join(' ')}\``;
  });
  const failures = runs.filter((r) => !r.result.ok).map((r) => failed(`${r.label}:`, r).replace('\n\n', ' '));
  return [
    title,
    '',
    `Jobs seeded in SQL before the worker starts; ${workers.join('; ')}, MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset'}. ` +
      `RSS = VmRSS of ${runs.length > 1 ? 'each worker process' : 'that process'} sampled every second ("warm" = first sample after 10% of the jobs); ` +
      'VmHWM = the kernel\'s high-water mark, start-up included. Dead tuples from pg_stat_user_tables ' +
      `after the worker stopped. ${repsNote(runs.find((r) => r.result.ok) ?? runs[0]!)}.`,
    ...(bare
      ? [
          '',
          'The bare client is the reference: the bench\'s bare node-postgres client (src/systems/bare-client.mjs, the one the ' +
            'drains measure: 2 connections, SKIP LOCKED claims of 500, one DELETE → history INSERT per batch, no handler work, ' +
            'no validation, no retries), run on the same Node with the same flags and environment, over the same number of ' +
            'jobs seeded the same way into its own table (bare.jobs). It is the floor for any Node worker draining this queue ' +
            `(V8's young generation growing under the allocation rate, node-postgres, the node binary), measured in this run` +
            (sl ? ", so sluice's peak is also given as a multiple of it." : '.'),
        ]
      : []),
    ...(failures.length ? ['', ...failures] : []),
    '',
    table(
      ['figure', ...header, ...(targets ? ['target'] : [])],
      [
        row('jobs/s', values('jobsPerSecond', int)),
        row('RSS at start (MB)', values('rssStartMB', mb)),
        row('RSS warm (MB)', values('rssWarmMB', mb)),
        row('RSS at half the jobs (MB)', values('rssHalfMB', mb)),
        row('RSS peak (MB)', values('rssPeakMB', mb), ...target(() => `≤ 100 MB: ${met(peak!.median <= 100)}${vsBare}`)),
        row('RSS at end (MB)', values('rssEndMB', mb), ...target(() => `flat (end ≤ warm + 10%): ${met(end!.median <= warm!.median * 1.1)}`)),
        row('RSS high-water mark, VmHWM (MB)', values('rssHwmMB', mb)),
        row(
          'JS heap used at start / end (MB)',
          runs.map((r) => `${cell(field(r, 'heapStartMB'), mb)} / ${cell(field(r, 'heapEndMB'), mb)}`),
        ),
        row('external memory at end (MB)', values('externalEndMB', mb)),
        row(`${jobsTables} dead tuples at end`, values('deadTuples', int)),
        row(`${jobsTables} live tuples at end`, values('liveTuples', int)),
        row(`autovacuums of ${jobsTables} during the run`, values('autovacuums', int)),
        row(`${jobsTables} size with indexes (MB)`, values('tableMB', mb)),
      ],
    ),
  ].join('\n');
}

function configSection(o: Options, results: StepResult[]): string {
  const used = new Set(results.map((r) => r.variant));
  const lines = variants(o.tuning)
    .filter((v) => used.has(v.key))
    .map((v) => {
      const r = results.find((x) => x.variant === v.key && x.result.ok)?.result;
      const version = r?.ok ? ` ${r.libraryVersion} on Node ${r.node}` : '';
      return `- **${v.label}**${version}: ${v.note}. Options: \`${JSON.stringify(v.options)}\``;
    });
  return ['## Configurations', '', ...lines].join('\n');
}

const method = (o: Options) => `## How it was measured

- Every system runs in its own child process, against its own database on the same server,
  cloned for each repetition from a template its own migrations built; all use node-postgres.
- Each figure is the median of the repetitions, with the lowest and highest in brackets.
- Warm-up is excluded: a drain first runs 1,000 jobs (1 for pg-boss defaults) through a worker in
  the same process; an enqueue first sends 200 single jobs or 2,000 bulk jobs; latency first runs
  ${o.latencyWarmupSeconds} s at the rate. Latency runs from each enqueue call to its handler; how late
  the producer started its calls is shown beside it, so a producer that falls behind is reported, not hidden.
- Before a timed run the database is analyzed and checkpointed.
- Drain time runs from the first handler call until the database holds no unfinished job
  (acknowledgements still batched in the client do not count as done).
- Ratios are sluice's median divided by the peer's: above 1 means sluice is faster
  (for latency, below 1 means sluice is quicker).`;

export function renderMarkdown(o: Options, facts: Facts, results: StepResult[], seconds: number): string {
  const groups = new Set(results.map((r) => r.group));
  const busiest = Math.max(facts.loadAverage.atStart, facts.loadAverage.atEnd ?? 0);
  const parts = [
    `# sluice benchmark, ${facts.date.slice(0, 10)}${o.quick ? ' (quick)' : ''}`,
    '',
    `${o.reps} repetitions per figure; whole run ${seconds.toFixed(0)} s.`,
    '',
    machine(facts),
  ];
  if (busiest > facts.cores) {
    parts.push(
      '',
      `**Busy machine:** the load average reached ${busiest.toFixed(1)} on ${facts.cores} cores while this ran, so other ` +
        'processes competed for the CPU and the disk; treat the figures as rough and compare ratios, not absolutes.',
    );
  }
  if (groups.has('drain')) parts.push('', drainSection(o, results));
  if (groups.has('enqueue')) parts.push('', enqueueSection(results));
  if (groups.has('ceiling')) parts.push('', ceilingSection(o, results));
  if (groups.has('latency')) parts.push('', latencySection(o, results));
  else if (o.quick && !o.partial) parts.push('', '## Latency', '', 'Not run by `--quick`; run `pnpm bench --quick --only latency` or the full bench.');
  const one = (s: ScenarioKey) => results.find((r) => r.scenario === s);
  const b = one('backlog');
  if (b) parts.push('', backlogSection(b));
  const e = one('external');
  if (e) parts.push('', externalSection(e));
  const c = one('cpu');
  if (c) parts.push('', cpuSection(c));
  const soaks = results.filter((x) => x.scenario === 'soak');
  if (soaks.length) parts.push('', soakSection(soaks));
  const r = one('resume');
  if (r) parts.push('', resumeSection(r));
  const cc = one('cron-cluster');
  if (cc) parts.push('', cronClusterSection(cc));
  const ag = one('aging');
  if (ag) parts.push('', agingSection(ag));
  parts.push('', configSection(o, results), '', method(o), '');
  return parts.join('\n');
}

/**
 * results/<date>T<hhmm>.md and .json (UTC, when the run started). The time
 * keeps a later run of the same day from overwriting an earlier one that a
 * document may cite; a quick or partial run also says so in its name.
 */
export async function writeResults(o: Options, facts: Facts, results: StepResult[], markdown: string): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const partial = o.partial ? `-${o.groups.join('-')}${o.systems.length < 4 ? `-${o.systems.join('-')}` : ''}` : '';
  const base = `${RESULTS_DIR}${facts.date.slice(0, 16).replace(':', '')}${o.quick ? '-quick' : ''}${partial}`;
  await writeFile(`${base}.md`, markdown);
  await writeFile(`${base}.json`, `${JSON.stringify({ facts, options: o, results }, null, 2)}\n`);
  return [`${base}.md`, `${base}.json`];
}
