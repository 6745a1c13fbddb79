// `pnpm bench`: runs every scenario for every system, one child process per
// (scenario, configuration), and prints the report. Progress goes to stderr,
// the report to stdout and to results/.
import { loadavg } from 'node:os';
import { dropBenchDatabases } from './db.js';
import { machineFacts, otherActiveSessions } from './facts.js';
import { parseOptions, type Group, type Options } from './options.js';
import { renderMarkdown, writeResults, type StepResult } from './report.js';
import { runChild } from './spawn.js';
import type { ScenarioKey, Task } from './task.js';
import { ENQUEUE_VARIANTS, LATENCY_VARIANTS, SOAK_VARIANTS, variantByKey, variants } from './variants.js';

const CHILD_TIMEOUT_MS = 20 * 60_000;
const CEILING_BATCHES = [100, 1_000];

interface Step {
  group: Group;
  scenario: ScenarioKey;
  variant: string;
  params: Pick<Task, 'jobs' | 'batch' | 'capSeconds' | 'rate' | 'seconds' | 'warmupSeconds' | 'backlog' | 'clients' | 'processes'>;
  /** Repetitions when not the run's --reps (soak: one long run). */
  reps?: number;
}

function plan(o: Options): Step[] {
  const want = (key: string) => o.systems.includes(variantByKey(o.tuning, key).system);
  const steps: Step[] = [];
  if (o.groups.includes('drain')) {
    for (const v of variants(o.tuning).filter((x) => want(x.key))) {
      const capSeconds = v.drainCapped ? o.drainCapSeconds : undefined;
      steps.push({ group: 'drain', scenario: 'drain', variant: v.key, params: { jobs: o.drainJobs, capSeconds } });
    }
  }
  if (o.groups.includes('enqueue')) {
    for (const key of ENQUEUE_VARIANTS.filter(want)) {
      steps.push({ group: 'enqueue', scenario: 'enqueue-one', variant: key, params: { jobs: o.enqueueOneJobs } });
      steps.push({ group: 'enqueue', scenario: 'enqueue-many', variant: key, params: { jobs: o.enqueueManyJobs } });
    }
  }
  if (o.groups.includes('ceiling') && o.systems.includes('sluice')) {
    for (const batch of CEILING_BATCHES) {
      steps.push({ group: 'ceiling', scenario: 'ceiling', variant: 'sluice', params: { jobs: o.drainJobs, batch } });
    }
  }
  if (o.groups.includes('latency')) {
    for (const key of LATENCY_VARIANTS.filter(want)) {
      steps.push({
        group: 'latency',
        scenario: 'latency',
        variant: key,
        params: {
          jobs: o.latencyRate * o.latencySeconds,
          rate: o.latencyRate,
          seconds: o.latencySeconds,
          warmupSeconds: o.latencyWarmupSeconds,
        },
      });
    }
  }
  // Scenarios 4-10 measure sluice alone (the peers' figures come from scenarios 1-3),
  // except that the soak also runs the bare client, as the floor of its memory.
  if (o.systems.includes('sluice')) {
    if (o.groups.includes('backlog')) {
      steps.push({ group: 'backlog', scenario: 'backlog', variant: 'sluice', params: { jobs: o.backlogDrainJobs, backlog: o.backlogJobs } });
    }
    if (o.groups.includes('external')) {
      steps.push({
        group: 'external',
        scenario: 'external',
        variant: 'sluice',
        params: { jobs: 0, seconds: o.externalSeconds, clients: o.externalClients },
      });
    }
    if (o.groups.includes('cpu')) {
      steps.push({ group: 'cpu', scenario: 'cpu', variant: 'sluice', params: { jobs: o.cpuJobs, processes: o.cpuProcesses } });
    }
  }
  if (o.groups.includes('soak')) {
    for (const key of SOAK_VARIANTS.filter(want)) {
      steps.push({ group: 'soak', scenario: 'soak', variant: key, params: { jobs: o.soakJobs }, reps: 1 });
    }
  }
  if (o.systems.includes('sluice')) {
    if (o.groups.includes('resume')) {
      steps.push({ group: 'resume', scenario: 'resume', variant: 'sluice', params: { jobs: o.resumeSamples } });
    }
    if (o.groups.includes('cron')) {
      steps.push({ group: 'cron', scenario: 'cron-cluster', variant: 'sluice', params: { jobs: 0, seconds: o.cronSeconds } });
    }
    if (o.groups.includes('aging')) {
      steps.push({ group: 'aging', scenario: 'aging', variant: 'sluice', params: { jobs: 0 } });
    }
  }
  return steps;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const facts = await machineFacts();
  await dropBenchDatabases();
  const started = performance.now();
  const results: StepResult[] = [];
  try {
    for (const step of plan(options)) {
      const variant = variantByKey(options.tuning, step.variant);
      const t0 = performance.now();
      process.stderr.write(`${step.scenario.padEnd(13)} ${variant.label.padEnd(28)} `);
      const result = await runChild(
        variant.system,
        { scenario: step.scenario, variant: step.variant, tuning: options.tuning, reps: step.reps ?? options.reps, ...step.params },
        CHILD_TIMEOUT_MS,
      );
      process.stderr.write(`${result.ok ? 'ok' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      if (!result.ok) process.stderr.write(`${result.error}\n`);
      results.push({ ...step, label: variant.label, system: variant.system, result });
    }
  } finally {
    await dropBenchDatabases();
  }
  facts.otherActiveSessions.atEnd = await otherActiveSessions();
  facts.loadAverage.atEnd = loadavg()[0]!;
  const markdown = renderMarkdown(options, facts, results, (performance.now() - started) / 1000);
  process.stdout.write(markdown);
  const files = await writeResults(options, facts, results, markdown);
  process.stderr.write(`written: ${files.join(', ')}\n`);
}

await main();
