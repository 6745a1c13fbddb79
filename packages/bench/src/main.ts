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
import { ENQUEUE_VARIANTS, LATENCY_VARIANTS, variantByKey, variants } from './variants.js';

const CHILD_TIMEOUT_MS = 20 * 60_000;
const CEILING_BATCHES = [100, 1_000];

interface Step {
  group: Group;
  scenario: ScenarioKey;
  variant: string;
  params: Pick<Task, 'jobs' | 'batch' | 'capSeconds' | 'rate' | 'seconds' | 'warmupSeconds'>;
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
        { scenario: step.scenario, variant: step.variant, tuning: options.tuning, reps: options.reps, ...step.params },
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
