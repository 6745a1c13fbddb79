// Report sections of the sluice-only timing scenarios: how soon a resume
// wakes a worker, how late a cron cluster enqueues and starts its fires, and
// how long an aging low-priority job waits under a stream of high ones.
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

export function agingSection(r: StepResult): string {
  const title = '## Aging: a low job in a stream of high ones, agingAfterMs 100';
  if (!r.result.ok) return failed(title, r);
  return [
    title,
    '',
    'One worker slot, a 10 ms handler; high jobs topped up to 40 waiting every 20 ms. The low job (priority -10) ' +
      'joins once high jobs wait; from its enqueue to its claim on the database clock, the priority it had aged to, and ' +
      `how many high jobs started in between. ${repsNote(r)}.`,
    '',
    table(
      ['figure', 'value'],
      [
        ['wait until claimed (ms)', cell(field(r, 'waitMs'), ms)],
        ['priority at claim', cell(field(r, 'priorityAtClaim'), int)],
        ['high jobs started before it', cell(field(r, 'highJobsBefore'), int)],
      ],
    ),
  ].join('\n');
}
