// Maps the errors sluice's SQL functions raise to sluice's named errors.
import {
  DependencyError,
  IsolationLevelError,
  JobNotFoundError,
  QueueFullError,
  ReplayDependencyError,
  SluiceError,
  UniqueKeyConflictError,
  UnknownJobError,
  ValidationError,
  type BlockedReplay,
} from './errors.js';

interface PgError {
  code?: string;
  message: string;
}

export function translateDbError(err: unknown): unknown {
  if (err instanceof SluiceError || typeof err !== 'object' || err === null) return err;
  const e = err as PgError;
  if (e.code === 'P0002' && e.message.startsWith('sluice.dead_replay')) {
    const ids = (e.message.match(/\d+/g) ?? []).map(Number);
    return new JobNotFoundError(ids, 'dead job', { cause: err });
  }
  if (e.code === 'P0002' && e.message.startsWith('sluice.enqueue_many')) {
    const ids = (e.message.match(/\d+/g) ?? []).map(Number);
    return new JobNotFoundError(ids, 'job to depend on', { cause: err });
  }
  if (e.code === 'SLQ01' || e.code === 'SLQ02') {
    // Why it did not wait, when the database says: the message names the queue and its limits, never a payload.
    const why = e.message.match(/, and (this transaction holds .*)$/)?.[1];
    return new QueueFullError(e.message.match(/queue (\S+) is full/)?.[1] ?? '?', { cause: err, ...(why ? { why } : {}) });
  }
  if (e.code === 'SLI01') {
    // "sluice.<function>: <what> needs READ COMMITTED, this transaction is <level>"
    const m = e.message.match(/^sluice\.\w+: (.*) needs READ COMMITTED, this transaction is (.+)$/);
    return new IsolationLevelError(m?.[2] ?? '?', m?.[1] ?? 'this call', { cause: err });
  }
  if (e.code === 'SLU01') {
    return new UniqueKeyConflictError(e.message.replace(/^sluice\.enqueue_many: /, ''), { cause: err });
  }
  if (e.code === 'SLD01') {
    return new DependencyError(e.message.replace(/^sluice\.enqueue_many: /, ''), { cause: err });
  }
  if (e.code === 'SLD02') {
    const blocked = [...e.message.matchAll(/job (\d+) on job (\d+) \((dead|cancelled|dropped)\)/g)].map(
      (m): BlockedReplay => ({ jobId: Number(m[1]), parentId: Number(m[2]), parentState: m[3] as BlockedReplay['parentState'] }),
    );
    const count = Number(e.message.match(/^sluice\.dead_replay: (\d+) /)?.[1] ?? blocked.length);
    return new ReplayDependencyError(blocked, count, { cause: err });
  }
  if (e.code === '23503' && e.message.startsWith('sluice.cron_schedules: no job named')) {
    return new UnknownJobError(e.message.match(/"(.*)"/)?.[1] ?? '?', 'sluice.job_types', { cause: err });
  }
  if ((e.code === '22023' || e.code === '54000') && e.message.startsWith('sluice')) {
    return new ValidationError('sql', e.message, { cause: err });
  }
  return err;
}
