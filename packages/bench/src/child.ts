// Child process entry: runs one task's repetitions in a fresh process (on
// Node 22 for the peers) and sends the samples back over IPC.
import { installProfiler, profileReport } from './profile.js';
import { aging } from './scenarios/aging.js';
import { backlog } from './scenarios/backlog.js';
import { ceiling } from './scenarios/ceiling.js';
import { cronCluster } from './scenarios/cron-cluster.js';
import { cpu } from './scenarios/cpu.js';
import { drain } from './scenarios/drain.js';
import { enqueue } from './scenarios/enqueue.js';
import { external } from './scenarios/external.js';
import { latency } from './scenarios/latency.js';
import { resume } from './scenarios/resume.js';
import { soak } from './scenarios/soak.js';
import { loadSystem } from './systems/load.js';
import type { Sample, Task, TaskResult } from './task.js';
import { variantByKey } from './variants.js';

async function runTask(task: Task): Promise<TaskResult> {
  const variant = variantByKey(task.tuning, task.variant ?? 'sluice');
  const sys = await loadSystem(variant.system);
  const samples: Sample[] = [];
  for (let rep = 0; rep < task.reps; rep++) {
    let sample: Sample;
    switch (task.scenario) {
      case 'drain':
        sample = { ...(await drain(sys, variant, task.jobs, task.capSeconds)) };
        break;
      case 'enqueue-one':
        sample = { ...(await enqueue(sys, variant, 'one', task.jobs)) };
        break;
      case 'enqueue-many':
        sample = { ...(await enqueue(sys, variant, 'many', task.jobs)) };
        break;
      case 'ceiling':
        sample = { ...(await ceiling(task.jobs, task.batch!)) };
        break;
      case 'latency':
        sample = { ...(await latency(sys, variant, task.rate!, task.seconds!, task.warmupSeconds!)) };
        break;
      case 'backlog':
        sample = { ...(await backlog(sys, variant, task.backlog!, task.jobs)) };
        break;
      case 'external':
        sample = { ...(await external(sys, variant, task.seconds!, task.clients!)) };
        break;
      case 'cpu':
        sample = { ...(await cpu(sys, task.jobs, task.processes!)) };
        break;
      case 'soak':
        sample = { ...(await soak(sys, variant, task.jobs)) };
        break;
      case 'resume':
        sample = { ...(await resume(sys, task.jobs)) };
        break;
      case 'cron-cluster':
        sample = { ...(await cronCluster(sys, task.seconds!)) };
        break;
      case 'aging':
        sample = { ...(await aging(sys)) };
        break;
    }
    samples.push(sample);
  }
  return { ok: true, samples, libraryVersion: await sys.version(), node: process.version };
}

const task = JSON.parse(process.argv[2]!) as Task;
const profiling = process.env.BENCH_PROFILE === '1';
if (profiling) installProfiler();
let result: TaskResult;
try {
  result = await runTask(task);
} catch (err) {
  result = { ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) };
}
if (profiling) console.error(`[${task.variant ?? 'sluice'} ${task.scenario}] ${profileReport()}`);
process.send!(result, () => process.exit(0));
