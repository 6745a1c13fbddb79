// Asserting that bad input gets a named error and writes nothing: row counts
// of the sluice tables are compared before and after.
import type pg from 'pg';
import { expect } from 'vitest';
import { ValidationError } from '../../packages/sluice/src/index.js';

const TABLES = ['jobs', 'queues', 'dead_jobs', 'job_history', 'job_types', 'workers', 'cron_schedules', 'batches'] as const;

export interface Expected {
  /** The class the error must be an instance of; its `name` must equal `name`. */
  cls: abstract new (...args: never[]) => Error;
  name: string;
  /** Text the message must contain: the field (or id) it is about. */
  mentions: string | string[];
  /** For a ValidationError: the exact field it reports. */
  field?: string;
  /** Text that must not appear in the message (payload contents). */
  notMentions?: string[];
}

export function rejections(pool: () => pg.Pool) {
  /** Row counts of every sluice table, read in one statement. */
  async function snapshot(): Promise<Record<string, number>> {
    const { rows } = await pool().query<Record<string, string>>(
      `SELECT ${TABLES.map((t) => `(SELECT count(*) FROM sluice.${t}) AS ${t}`).join(', ')}`,
    );
    return Object.fromEntries(TABLES.map((t) => [t, Number(rows[0]![t])]));
  }

  /** Runs `fn`, expects the named error, and checks no sluice table changed. */
  async function expectRejected(fn: () => unknown, e: Expected): Promise<Error> {
    const before = await snapshot();
    let caught: unknown;
    try {
      await fn();
    } catch (err) {
      caught = err;
    }
    expect(caught, 'expected an error').toBeDefined();
    expect(caught).toBeInstanceOf(e.cls);
    const err = caught as Error & { field?: string };
    expect(err.name).toBe(e.name);
    for (const m of [e.mentions].flat()) expect(err.message).toContain(m);
    for (const m of e.notMentions ?? []) expect(err.message).not.toContain(m);
    if (e.field !== undefined) expect(err.field).toBe(e.field);
    expect(await snapshot()).toEqual(before);
    return err;
  }

  return { snapshot, expectRejected };
}

export const validation = (field: string, extra: Partial<Expected> = {}): Expected => ({
  cls: ValidationError,
  name: 'ValidationError',
  mentions: field.split('.').pop()!,
  field,
  ...extra,
});
