// Report sections of the sluice-only timing scenarios: how soon a resume
// wakes a worker, and how late a cron cluster enqueues and starts its fires.
import { cell, failed, field, int, ms, repsNote, table, type StepResult } from './report-format.js';

export function resumeSection(r: StepResult): string {
  const title = `## Resume: ${int(r.params.jobs)} resumes of a paused queue, worker polling once an hour (ms)`;
  if (!r.result.ok) return failed(title, r);
  return [
    title,
    '',
    'Each resume: pause, enqueue one job, resume with `sluice.queue_configure`; from the resume ' +
      "statement's clock_timestamp() to the job's attempted_at (both the database's clock). Only the " +
      `notification can wake the worker. ${repsNote(r)}.`,
    '',
    table(
      ['figure', 'value'],
      [
        ['p50', cell(field(r, 'p50'), ms)],
        ['p95', cell(field(r, 'p95'), ms)],
        ['max', cell(field(r, 'max'), ms)],
      ],
    ),
  ].join('\n');
}

export function cronClusterSection(r: StepResult): string {
  const title = `## Cron cluster: 3 schedulers, a per-second schedule for ${r.params.seconds} s, one stopped halfway (ms)`;
  if (!r.result.ok) return failed(title, r);
  return [
    title,
    '',
    'Three workers in one process, each running the scheduler, share `* * * * * *` (misfire run_all); one stops ' +
      'at half time. Enqueue lag = created_at - run_at, start lag = attempted_at - run_at, on the database clock. ' +
      `${repsNote(r)}.`,
    '',
    table(
      ['figure', 'p50', 'p95', 'max'],
      [
        ['fires', cell(field(r, 'fires'), int), '', ''],
        ['enqueue lag', cell(field(r, 'enqueueP50'), ms), cell(field(r, 'enqueueP95'), ms), cell(field(r, 'enqueueMax'), ms)],
        ['start lag', cell(field(r, 'startP50'), ms), cell(field(r, 'startP95'), ms), cell(field(r, 'startMax'), ms)],
      ],
    ),
  ].join('\n');
}
