// Property tests of the job state machine as SQL enforces it. fast-check
// draws random sequences of operations (enqueue, claims by two workers,
// completions and failures answered by the holding worker, by the other
// worker, or by a SQL caller without a lease, each with the current or a
// stale attempt and claim token; lapsed leases and rescue, cancel,
// dead-letter replay), applies them through the statements
// and functions in packages/sluice/src/sql, and after every step compares the
// database with a small model and checks the invariants:
//   - every enqueued id is in exactly one of jobs / job_history / dead_jobs,
//     and no other id is anywhere;
//   - states are legal; 0 <= attempt <= max_attempts; running ⇔ locked_by set;
//   - an operation touches only the rows it is meant to: a stale complete or
//     fail (wrong attempt, job not running, another worker's answer, or a
//     claim token of an earlier claim) changes nothing at all;
//   - a finished (completed or cancelled) job never comes back.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobErrorEntry } from '../packages/sluice/src/index.js';
import { deadReplay } from '../packages/sluice/src/sql/dead-jobs.js';
import { jobClaim, jobCompleteMany, jobFailMany } from '../packages/sluice/src/sql/job-leases.js';
import { jobCancel, jobEnqueueMany, jobRescueExpired } from '../packages/sluice/src/sql/jobs.js';
import { createTestDb, type TestDb } from './helpers/db.js';

const QUEUE = 'prop';
const JOB_NAME = 'prop.job';
const WORKERS = { A: 'worker-A', B: 'worker-B' } as const;
const LEASE_MS = 600_000; // never lapses by itself during a run
const RETRY_LATER_MS = 600_000; // a retry that stays scheduled during a run
const UNKNOWN_ID = 9_000_000_000_000;

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

// ---- commands -------------------------------------------------------------

type Prefer = 'running' | 'dead' | 'any';
/** Which job a command aims at: one in the preferred state if any, else any known id, or an unknown id. */
interface Pick {
  prefer: Prefer;
  n: number;
  unknown: boolean;
}
interface LeaseTarget {
  pick: Pick;
  /** Added to the job's current attempt: 0 is the live lease, others are stale. */
  delta: number;
  /** The claim token presented: the live claim's, or one of an earlier claim (or none ever issued). */
  token: 'live' | 'stale';
}
/**
 * Who answers a batch: the worker holding its first job, the other worker,
 * or a caller from SQL, which presents neither worker id nor claim token.
 */
type Answerer = 'holder' | 'other' | 'sql';

type Command =
  | { t: 'enqueue'; n: number; maxAttempts: number; retryLater: boolean }
  | { t: 'claim'; worker: keyof typeof WORKERS; limit: number }
  | { t: 'complete'; as: Answerer; targets: LeaseTarget[] }
  | { t: 'fail'; as: Answerer; targets: (LeaseTarget & { permanent: boolean; delayMs: number | null })[] }
  | { t: 'expire'; picks: Pick[] }
  | { t: 'rescue' }
  | { t: 'cancel'; pick: Pick }
  | { t: 'replay'; pick: Pick };

const pickArb = (prefer: Prefer): fc.Arbitrary<Pick> =>
  fc.record({
    prefer: fc.constant(prefer),
    n: fc.nat({ max: 1000 }),
    unknown: fc.oneof({ weight: 19, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  });
const leaseTargetFields = {
  pick: fc.oneof({ weight: 4, arbitrary: pickArb('running') }, { weight: 1, arbitrary: pickArb('any') }),
  delta: fc.constantFrom(0, 0, 0, -1, 1),
  token: fc.constantFrom<LeaseTarget['token']>('live', 'live', 'live', 'stale'),
};
const answererArb = fc.constantFrom<Answerer>('holder', 'holder', 'holder', 'other', 'sql');
const leaseTargetArb: fc.Arbitrary<LeaseTarget> = fc.record(leaseTargetFields);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('enqueue' as const),
      n: fc.integer({ min: 1, max: 3 }),
      maxAttempts: fc.integer({ min: 1, max: 3 }),
      retryLater: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('claim' as const),
      worker: fc.constantFrom('A' as const, 'B' as const),
      limit: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('complete' as const),
      as: answererArb,
      targets: fc.array(leaseTargetArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('fail' as const),
      as: answererArb,
      targets: fc.array(
        fc.record({
          ...leaseTargetFields,
          permanent: fc.constantFrom(false, false, true),
          delayMs: fc.constantFrom<number | null>(null, null, 0, RETRY_LATER_MS),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('expire' as const), picks: fc.array(pickArb('running'), { minLength: 1, maxLength: 2 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'rescue' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('cancel' as const), pick: fc.oneof(pickArb('any'), pickArb('running')) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('replay' as const), pick: fc.oneof(pickArb('dead'), pickArb('any')) }) },
);

// ---- model ----------------------------------------------------------------

type Place = 'jobs' | 'history' | 'dead';
type ModelState = 'scheduled' | 'available' | 'running' | 'completed' | 'cancelled' | 'dead';

interface ModelJob {
  id: number;
  place: Place;
  state: ModelState;
  attempt: number;
  maxAttempts: number;
  lockedBy: string | null;
  /** The claim token of the latest claim, and those of the claims before it. */
  lease: number | null;
  earlierLeases: number[];
  /** Kinds of the error entries, in order. */
  errors: string[];
  retryDelayMs: number;
  deadReason: string | null;
}

class Model {
  readonly jobs = new Map<number, ModelJob>();
  /** Ids that reached history: they must stay there, unchanged in state. */
  readonly finished = new Map<number, 'completed' | 'cancelled'>();

  resolve(pick: Pick): number {
    const all = [...this.jobs.values()];
    if (pick.unknown || all.length === 0) return UNKNOWN_ID + pick.n;
    const preferred =
      pick.prefer === 'running'
        ? all.filter((j) => j.state === 'running')
        : pick.prefer === 'dead'
          ? all.filter((j) => j.state === 'dead')
          : all;
    const from = preferred.length > 0 ? preferred : all;
    return from[pick.n % from.length]!.id;
  }

  attemptOf(id: number): number {
    return this.jobs.get(id)?.attempt ?? 1;
  }

  holdsLease(id: number, attempt: number): boolean {
    const j = this.jobs.get(id);
    return j !== undefined && j.place === 'jobs' && j.state === 'running' && j.attempt === attempt;
  }

  /**
   * The fence a batch of answers presents: the answering worker's id and a
   * claim token per job (none for a SQL caller), and why each answer is to
   * be refused (null: it is applied).
   */
  fence(as: Answerer, ids: number[], attempts: number[], tokens: LeaseTarget['token'][]): {
    workerId?: string;
    leases?: number[];
    refusals: (string | null)[];
  } {
    const first = this.jobs.get(ids[0]!);
    const holder = first?.state === 'running' && first.lockedBy ? first.lockedBy : WORKERS.A;
    const workerId = as === 'sql' ? undefined : as === 'holder' ? holder : holder === WORKERS.A ? WORKERS.B : WORKERS.A;
    const leases = ids.map((id, i) => {
      const j = this.jobs.get(id);
      const live = j?.lease ?? 0;
      return tokens[i] === 'live' ? live : (j?.earlierLeases.at(-1) ?? live + 1);
    });
    const refusals = ids.map((id, i) => {
      if (!this.holdsLease(id, attempts[i]!)) return 'stale';
      const j = this.jobs.get(id)!;
      if (workerId === undefined) return null;
      if (j.lockedBy !== workerId) return 'wrongWorker';
      return leases[i] === j.lease ? null : 'staleLease';
    });
    return workerId === undefined ? { refusals } : { workerId, leases, refusals };
  }

  finish(j: ModelJob, state: 'completed' | 'cancelled'): void {
    j.place = 'history';
    j.state = state;
    j.lockedBy = null;
    this.finished.set(j.id, state);
  }

  toDead(j: ModelJob, reason: string, errorKind: string): void {
    j.place = 'dead';
    j.state = 'dead';
    j.lockedBy = null;
    j.errors.push(errorKind);
    j.deadReason = reason;
  }
}

// ---- database views -------------------------------------------------------

type Snapshot = Map<string, string>;

/** Every row of the three job tables, as JSON text keyed by table and id. */
async function snapshot(): Promise<Snapshot> {
  const { rows } = await db.pool.query<{ k: string; r: string }>(
    `SELECT 'jobs:' || id AS k, to_jsonb(j)::text AS r FROM sluice.jobs j
     UNION ALL SELECT 'history:' || id || ':' || finished_at, to_jsonb(h)::text FROM sluice.job_history h
     UNION ALL SELECT 'dead:' || id, to_jsonb(d)::text FROM sluice.dead_jobs d`,
  );
  return new Map(rows.map((r) => [r.k, r.r]));
}

/** Rows that changed, appeared or vanished between two snapshots, except those of the given ids. */
function unexpectedChanges(before: Snapshot, after: Snapshot, touched: Set<number>): string[] {
  const idOf = (k: string) => Number(k.split(':')[1]);
  const out: string[] = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    if (touched.has(idOf(k))) continue;
    if (before.get(k) !== after.get(k)) out.push(`${k}: ${before.get(k) ?? '(none)'} -> ${after.get(k) ?? '(none)'}`);
  }
  return out;
}

interface DbJob {
  id: number;
  place: Place;
  state: string;
  attempt: number;
  max_attempts: number;
  locked_by: string | null;
  locked_until: Date | null;
  error_kinds: string[];
  reason: string | null;
}

async function readAll(): Promise<DbJob[]> {
  const { rows } = await db.pool.query<Omit<DbJob, 'id'> & { id: string }>(
    `SELECT id, 'jobs' AS place, state, attempt, max_attempts, locked_by, locked_until,
            (SELECT coalesce(array_agg(e->>'kind' ORDER BY o), '{}') FROM jsonb_array_elements(errors) WITH ORDINALITY x(e, o)) AS error_kinds,
            NULL AS reason
     FROM sluice.jobs
     UNION ALL
     SELECT id, 'history', state, attempt, max_attempts, NULL, NULL,
            (SELECT coalesce(array_agg(e->>'kind' ORDER BY o), '{}') FROM jsonb_array_elements(errors) WITH ORDINALITY x(e, o)),
            NULL
     FROM sluice.job_history
     UNION ALL
     SELECT id, 'dead', 'dead', attempt, max_attempts, NULL, NULL,
            (SELECT coalesce(array_agg(e->>'kind' ORDER BY o), '{}') FROM jsonb_array_elements(errors) WITH ORDINALITY x(e, o)),
            reason
     FROM sluice.dead_jobs`,
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/** The invariants, and the database agreeing with the model. */
async function checkInvariants(model: Model, step: string): Promise<void> {
  const rows = await readAll();
  const where = new Map<number, DbJob[]>();
  for (const r of rows) where.set(r.id, [...(where.get(r.id) ?? []), r]);

  for (const [id, found] of where) {
    // No id the model does not know, and none in two places (or twice in one).
    expect(model.jobs.has(id), `${step}: unknown id ${id} in ${found[0]!.place}`).toBe(true);
    expect(found.map((f) => f.place), `${step}: id ${id} in more than one place`).toHaveLength(1);
  }
  for (const r of rows) {
    const legal = { jobs: ['scheduled', 'available', 'running'], history: ['completed', 'cancelled'], dead: ['dead'] }[r.place];
    expect(legal, `${step}: job ${r.id} in ${r.place} has state ${r.state}`).toContain(r.state);
    expect(r.attempt, `${step}: job ${r.id} attempt`).toBeGreaterThanOrEqual(0);
    expect(r.attempt, `${step}: job ${r.id} attempt above max_attempts`).toBeLessThanOrEqual(r.max_attempts);
    if (r.place === 'jobs') {
      expect(r.locked_by !== null, `${step}: job ${r.id} running ⇔ locked_by`).toBe(r.state === 'running');
      expect(r.locked_until !== null, `${step}: job ${r.id} running ⇔ locked_until`).toBe(r.state === 'running');
    }
  }
  for (const m of model.jobs.values()) {
    const found = where.get(m.id);
    expect(found, `${step}: job ${m.id} vanished (model: ${m.place}/${m.state})`).toBeDefined();
    const r = found![0]!;
    expect(
      { id: r.id, place: r.place, state: r.state, attempt: r.attempt, maxAttempts: r.max_attempts, lockedBy: r.locked_by, errors: r.error_kinds, reason: r.reason },
      `${step}: job ${m.id}`,
    ).toEqual({ id: m.id, place: m.place, state: m.state, attempt: m.attempt, maxAttempts: m.maxAttempts, lockedBy: m.lockedBy, errors: m.errors, reason: m.deadReason });
  }
  // A finished job never comes back: it is still in history, in the same state.
  for (const [id, state] of model.finished) {
    const found = where.get(id) ?? [];
    expect(found.map((f) => `${f.place}/${f.state}`), `${step}: finished job ${id} came back`).toEqual([`history/${state}`]);
  }
}

// ---- running a command ----------------------------------------------------

/** How often each outcome was reached, so a run shows the paths it exercised. */
const stats: Record<string, number> = {};
const tally = (key: string, n = 1) => void (stats[key] = (stats[key] ?? 0) + n);

function errorEntry(attempt: number, n: number): JobErrorEntry {
  return { attempt, at: new Date(0).toISOString(), kind: 'error', name: 'Error', message: `failure ${n}` };
}

/** Applies one command to the database and the model; returns the ids it may change. */
async function apply(model: Model, cmd: Command): Promise<Set<number>> {
  switch (cmd.t) {
    case 'enqueue': {
      const ids = await jobEnqueueMany(db.pool, {
        name: JOB_NAME,
        payloadsJson: JSON.stringify(Array.from({ length: cmd.n }, (_, k) => ({ k }))),
        queue: QUEUE,
        runAt: null,
        priority: null,
        maxAttempts: cmd.maxAttempts,
        timeoutMs: null,
        backoff: { kind: 'fixed', baseMs: cmd.retryLater ? RETRY_LATER_MS : 0, jitter: 0 },
        uniqueKeys: null,
        tags: null,
      });
      expect(ids).toHaveLength(cmd.n);
      for (const id of ids) {
        expect(model.jobs.has(id), `enqueue returned an existing id ${id}`).toBe(false);
        model.jobs.set(id, {
          id,
          place: 'jobs',
          state: 'available',
          attempt: 0,
          maxAttempts: cmd.maxAttempts,
          lockedBy: null,
          lease: null,
          earlierLeases: [],
          errors: [],
          retryDelayMs: cmd.retryLater ? RETRY_LATER_MS : 0,
          deadReason: null,
        });
      }
      return new Set(ids);
    }

    case 'claim': {
      const { rows: expectedOrder } = await db.pool.query<{ id: string }>(
        `SELECT id FROM sluice.jobs WHERE state = 'available' AND queue = $1
         ORDER BY priority DESC, run_at, id LIMIT $2`,
        [QUEUE, cmd.limit],
      );
      const available = [...model.jobs.values()].filter((j) => j.state === 'available').length;
      const claimed = await jobClaim(db.pool, { queues: [QUEUE], limits: [cmd.limit], workerId: WORKERS[cmd.worker], leaseMs: LEASE_MS });
      expect(claimed).toHaveLength(Math.min(cmd.limit, available));
      tally('claim.jobs', claimed.length);
      // The first ones in claim order, each a new attempt.
      expect(claimed.map((r) => r.id)).toEqual(expectedOrder.map((r) => Number(r.id)));
      for (const row of claimed) {
        const j = model.jobs.get(row.id)!;
        expect(j.state, `claimed job ${j.id} was not available`).toBe('available');
        j.attempt += 1;
        expect(row.attempt).toBe(j.attempt);
        expect(row.max_attempts).toBe(j.maxAttempts);
        j.state = 'running';
        j.lockedBy = WORKERS[cmd.worker];
        if (j.lease !== null) j.earlierLeases.push(j.lease);
        j.lease = row.lease;
      }
      return new Set(claimed.map((r) => r.id));
    }

    case 'complete': {
      const ids: number[] = [];
      const attempts: number[] = [];
      const tokens: LeaseTarget['token'][] = [];
      for (const t of cmd.targets) {
        const id = model.resolve(t.pick);
        if (ids.includes(id)) continue; // a worker never acks one job twice in a batch
        ids.push(id);
        attempts.push(model.attemptOf(id) + t.delta);
        tokens.push(t.token);
      }
      const { refusals, ...fence } = model.fence(cmd.as, ids, attempts, tokens);
      const expected = new Set(ids.filter((_, i) => refusals[i] === null));
      const applied = await jobCompleteMany(db.pool, { ids, attempts, results: ids.map(() => null), runMs: ids.map(() => 1), ...fence });
      expect([...applied].sort(), `complete ${JSON.stringify({ ids, attempts, fence, refusals })}`).toEqual([...expected].sort());
      for (const r of refusals) tally(`complete.${r ?? 'applied'}`);
      for (const id of expected) model.finish(model.jobs.get(id)!, 'completed');
      return expected;
    }

    case 'fail': {
      const ids: number[] = [];
      const attempts: number[] = [];
      const targets: (typeof cmd.targets)[number][] = [];
      for (const t of cmd.targets) {
        const id = model.resolve(t.pick);
        if (ids.includes(id)) continue;
        ids.push(id);
        attempts.push(model.attemptOf(id) + t.delta);
        targets.push(t);
      }
      const { refusals, ...fence } = model.fence(cmd.as, ids, attempts, targets.map((t) => t.token));
      const expected = new Map<number, 'retry' | 'dead'>();
      ids.forEach((id, i) => {
        if (refusals[i] !== null) return;
        const j = model.jobs.get(id)!;
        expected.set(id, targets[i]!.permanent || j.attempt >= j.maxAttempts ? 'dead' : 'retry');
      });
      const outcomes = await jobFailMany(db.pool, {
        ids,
        attempts,
        errors: ids.map((id, i) => errorEntry(attempts[i]!, id)),
        permanent: targets.map((t) => t.permanent),
        retryDelaysMs: targets.map((t) => t.delayMs),
        runMs: ids.map(() => 1),
        ...fence,
      });
      expect(new Map([...outcomes].sort()), `fail ${JSON.stringify({ ids, attempts, targets, fence, refusals })}`).toEqual(
        new Map([...expected].sort()),
      );
      ids.forEach((id, i) => {
        const outcome = expected.get(id);
        tally(`fail.${outcome ?? refusals[i]}`);
        if (!outcome) return;
        const j = model.jobs.get(id)!;
        if (outcome === 'dead') {
          model.toDead(j, targets[i]!.permanent ? 'permanent' : 'exhausted', 'error');
        } else {
          const delay = targets[i]!.delayMs ?? j.retryDelayMs;
          j.state = delay <= 0 ? 'available' : 'scheduled';
          j.lockedBy = null;
          j.errors.push('error');
        }
      });
      return new Set(expected.keys());
    }

    case 'expire':
    case 'rescue': {
      const expired = new Set<number>();
      if (cmd.t === 'expire') {
        for (const p of cmd.picks) {
          const id = model.resolve(p);
          const { rowCount } = await db.pool.query(
            `UPDATE sluice.jobs SET locked_until = now() - interval '1 s' WHERE id = $1 AND state = 'running'`,
            [id],
          );
          const j = model.jobs.get(id);
          expect(rowCount, `expire ${id}`).toBe(j?.state === 'running' ? 1 : 0);
          if (rowCount) expired.add(id);
        }
      }
      const expected = new Map<number, 'rescued' | 'dead'>();
      for (const id of expired) {
        const j = model.jobs.get(id)!;
        expected.set(id, j.attempt >= j.maxAttempts ? 'dead' : 'rescued');
      }
      const outcomes = await jobRescueExpired(db.pool, 1000);
      expect(new Map([...outcomes].sort()), `rescue of ${[...expired]}`).toEqual(new Map([...expected].sort()));
      for (const [id, outcome] of expected) {
        const j = model.jobs.get(id)!;
        tally(`rescue.${outcome}`);
        if (outcome === 'dead') {
          model.toDead(j, 'crashed', 'crash');
        } else {
          j.state = 'available';
          j.lockedBy = null;
          j.errors.push('crash');
        }
      }
      return expired;
    }

    case 'cancel': {
      const id = model.resolve(cmd.pick);
      const j = model.jobs.get(id);
      const live = j && j.place === 'jobs' ? j : undefined;
      const was = await jobCancel(db.pool, id);
      expect(was, `cancel ${id}`).toBe(live ? live.state : null);
      tally(`cancel.${live ? live.state : 'none'}`);
      if (!live) return new Set();
      if (live.state === 'running') live.errors.push('cancelled');
      model.finish(live, 'cancelled');
      return new Set([id]);
    }

    case 'replay': {
      const id = model.resolve(cmd.pick);
      const j = model.jobs.get(id);
      if (j?.place === 'dead') {
        expect(await deadReplay(db.pool, [id])).toEqual([id]);
        tally('replay.applied');
        j.place = 'jobs';
        j.state = 'available';
        j.attempt = 0;
        j.deadReason = null;
        return new Set([id]);
      }
      // Not a dead job: refused as a whole, nothing written.
      const err = await deadReplay(db.pool, [id]).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as { code?: string } | null)?.code, `replay of non-dead job ${id}`).toBe('P0002');
      tally('replay.refused');
      return new Set();
    }
  }
}

describe('SQL job state machine (fast-check)', () => {
  it('holds its invariants over random interleavings of operations', async () => {
    let runs = 0;
    let steps = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 10, maxLength: 30, size: 'max' }), async (commands) => {
        runs++;
        await db.pool.query('TRUNCATE sluice.jobs, sluice.job_history, sluice.dead_jobs');
        const model = new Model();
        for (const [i, cmd] of commands.entries()) {
          steps++;
          const step = `step ${i} ${JSON.stringify(cmd)}`;
          const before = await snapshot();
          const touched = await apply(model, cmd);
          const after = await snapshot();
          // Only the rows the operation was meant to change did change: a
          // stale answer leaves every row as it was.
          expect(unexpectedChanges(before, after, touched), step).toEqual([]);
          await checkInvariants(model, step);
        }
      }),
      { numRuns: 50 },
    );
    console.log(`sql-properties: ${runs} runs, ${steps} commands; outcomes ${JSON.stringify(Object.fromEntries(Object.entries(stats).sort()))}`);
    // The runs reached the fence's refusals, not only its acceptances.
    for (const refused of ['wrongWorker', 'staleLease', 'stale']) {
      expect((stats[`complete.${refused}`] ?? 0) + (stats[`fail.${refused}`] ?? 0), refused).toBeGreaterThan(0);
    }
  }, 120_000);
});
