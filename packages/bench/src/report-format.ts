// What every section of the report shares: the step result shape, number
// formats, median cells and markdown tables.
import type { Group } from './options.js';
import { summarize, type Summary } from './stats.js';
import type { SystemKey } from './systems/types.js';
import type { ScenarioKey, Task, TaskResult } from './task.js';

export interface StepResult {
  group: Group;
  scenario: ScenarioKey;
  variant: string;
  label: string;
  system: SystemKey;
  params: Pick<Task, 'jobs' | 'batch' | 'capSeconds' | 'rate' | 'seconds' | 'warmupSeconds' | 'backlog' | 'clients' | 'processes'>;
  result: TaskResult;
}

// Below 10 a rounded integer would hide the figure (pg-boss's default drain runs at ~0.5 jobs/s).
export const int = (n: number) => (n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));
export const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

export function field(r: StepResult | undefined, name: string): Summary | null {
  if (!r?.result.ok) return null;
  return summarize(r.result.samples.map((s) => Number(s[name])));
}

export function cell(s: Summary | null, fmt: (n: number) => string): string {
  return s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : 'failed';
}

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const repsNote = (r: StepResult) => {
  const n = r.result.ok ? r.result.samples.length : 0;
  return n >= 3 ? `median of ${n} repetitions (min–max)` : `${n} repetition${n === 1 ? '' : 's'} only: single figures, no spread`;
};

export function failed(title: string, r: StepResult): string {
  return [title, '', `failed: ${r.result.ok ? '' : r.result.error.split('\n')[0]}`].join('\n');
}

