// Reading query strings and form fields. Every value from outside is checked
// here; a bad one is a DashboardRequestError (400) naming the field.
import type { JobState } from 'sluice';
import { JOB_STATES, NAME_PATTERN, NAME_RULE, unstorable, type JobListFilter } from 'sluice/admin';
import { DashboardRequestError } from '../errors.js';

const MAX_TAG_TEXT = 128;

/** What the jobs page filters by; every filter is given, null when unset. */
export type JobFilter = Required<Pick<JobListFilter, 'queue' | 'state' | 'name' | 'tag' | 'id' | 'worker'>>;

export function optName(field: string, value: string | undefined | null): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (!NAME_PATTERN.test(value)) throw new DashboardRequestError(400, `${field}: ${NAME_RULE}`);
  return value;
}

export function jobIdParam(field: string, value: string | undefined | null): number {
  if (!value || !/^[1-9][0-9]{0,15}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new DashboardRequestError(400, `${field}: must be a positive integer job id`);
  }
  return Number(value);
}

export function optJobId(field: string, value: string | undefined | null): number | null {
  return value === undefined || value === null || value === '' ? null : jobIdParam(field, value);
}

export function optState(value: string | undefined | null): JobState | null {
  if (value === undefined || value === null || value === '') return null;
  if (!(JOB_STATES as readonly string[]).includes(value)) throw new DashboardRequestError(400, `state: must be one of ${JOB_STATES.join(', ')}`);
  return value as JobState;
}

/** Text to find in tags, trimmed; null when empty. */
function tagText(field: string, value: string | undefined | null): string | null {
  const text = (value ?? '').trim();
  if (!text) return null;
  if (text.length > MAX_TAG_TEXT) throw new DashboardRequestError(400, `${field}: at most ${MAX_TAG_TEXT} characters`);
  if (unstorable(text)) throw new DashboardRequestError(400, `${field}: must not contain a NUL character or an unpaired surrogate`);
  return text;
}

/** The search box: a job id (digits, optionally after "#"), else text to find in tags. */
export function searchText(value: string | undefined | null): { id: number | null; tag: string | null; text: string | null } {
  const text = tagText('q', value);
  if (text === null) return { id: null, tag: null, text: null };
  const m = /^#?([1-9][0-9]{0,15})$/.exec(text);
  if (m && Number.isSafeInteger(Number(m[1]))) return { id: Number(m[1]), tag: null, text };
  return { id: null, tag: text, text };
}

/** A worker id as workers write it (host, pid, random part): printable, no spaces. */
export function optWorker(value: string | undefined | null): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (!/^[\x21-\x7e]{1,200}$/.test(value)) throw new DashboardRequestError(400, 'worker: must be a worker id');
  return value;
}

/**
 * The jobs page's filters. `tag` is tag text that is never read as an id
 * (a tag link on the job page uses it, as a tag may be all digits); given
 * with `q`, it wins over q's tag text.
 */
export function jobFilter(q: (k: string) => string | undefined): { filter: JobFilter; text: string | null; tag: string | null } {
  const search = searchText(q('q'));
  const tag = tagText('tag', q('tag'));
  return {
    filter: {
      queue: optName('queue', q('queue')),
      state: optState(q('state')),
      name: optName('name', q('name')),
      tag: tag ?? search.tag,
      id: search.id,
      worker: optWorker(q('worker')),
    },
    text: search.text,
    tag,
  };
}

/** A form field that is an integer in [min, max], or empty (null: no limit). */
export function optIntField(field: string, value: unknown, min: number, max: number): number | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new DashboardRequestError(400, `${field}: must be empty or an integer from ${min} to ${max}`);
  }
  return Number(value);
}

/** Every value of a repeated form field as job ids, at most `max`. */
export function idList(field: string, value: unknown, max: number): number[] {
  const values = (Array.isArray(value) ? value : value === undefined ? [] : [value]).flatMap((v) => (typeof v === 'string' ? v.split(',') : []));
  if (values.length === 0) throw new DashboardRequestError(400, `${field}: select at least one job`);
  if (values.length > max) throw new DashboardRequestError(400, `${field}: at most ${max} jobs at once`);
  return [...new Set(values.map((v) => jobIdParam(field, v.trim())))];
}
