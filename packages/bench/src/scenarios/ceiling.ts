// In-database ceiling: the claim and complete statements sluice's worker
// sends, run in a plpgsql loop with a commit after each, so no client round
// trip, driver or JavaScript is involved. What the worker reaches, divided by
// this, is how much the client side costs.
import pg from 'pg';
import type { Queryable } from 'sluice/admin';
// Internal on purpose: the ceiling must run the worker's very statements, so
// it takes their text from the module that sends them instead of a copy.
import { jobClaim, jobCompleteMany } from '../../../sluice/src/sql/job-leases.js';
import { freshDatabase, settle } from '../db.js';
import { sluiceAdapter } from '../systems/sluice.js';
import { seed } from './common.js';

export interface CeilingSample {
  jobs: number;
  seconds: number;
  jobsPerSecond: number;
}

const WORKER_ID = 'bench-ceiling';
const LEASE_MS = 300_000;

interface Captured {
  text: string;
  values: unknown[];
}

async function capture(call: (db: Queryable) => Promise<unknown>): Promise<Captured> {
  let captured: Captured | undefined;
  const db: Queryable = {
    async query<R>(config: { text: string; values?: unknown[] }) {
      captured = { text: config.text, values: config.values ?? [] };
      // The one row a claim (an empty batch) and a completion (no stale ids) answer with.
      return { rows: [{ batch: '[]', stale: '' } as unknown as R], rowCount: 1 };
    },
  };
  await call(db);
  if (!captured) throw new Error('ceiling: the statement was not sent');
  return captured;
}

/** The server's own idea of each parameter's type, casts included. */
async function parameterTypes(client: pg.Client, text: string): Promise<string[]> {
  await client.query(`PREPARE bench_probe AS ${text}`);
  try {
    const { rows } = await client.query<{ types: string[] }>(
      `SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'bench_probe'`,
    );
    return rows[0]!.types;
  } finally {
    await client.query('DEALLOCATE bench_probe');
  }
}

function literal(value: unknown, type: string): string {
  if (value === null || value === undefined) return `NULL::${type}`;
  if (Array.isArray(value)) {
    const items = value.map((v) => (v === null ? 'NULL' : `"${String(v).replace(/["\\]/g, '\\$&')}"`));
    return `${pg.escapeLiteral(`{${items.join(',')}}`)}::${type}`;
  }
  if (typeof value === 'object') return `${pg.escapeLiteral(JSON.stringify(value))}::${type}`;
  return `${pg.escapeLiteral(String(value))}::${type}`;
}

/** Rewrites $n as the plpgsql variable prefix+n: a static statement, planned once and cached. */
function bind(text: string, prefix: string): string {
  return text.replace(/\$(\d+)/g, `${prefix}$1`);
}

async function procedureSql(client: pg.Client, batch: number): Promise<string> {
  const claim = await capture((db) =>
    jobClaim(db, { queues: ['default'], limits: [batch], workerId: WORKER_ID, leaseMs: LEASE_MS }),
  );
  // Per-job arrays the worker fills from the handler's answer (a no-op answers null in no
  // time), and the worker's id, which fences its writes. The id and attempt are marked so
  // that their parameters can be told apart however the worker encodes them.
  const ID = 90_000_001;
  const ATTEMPT = 90_000_002;
  const complete = await capture((db) =>
    jobCompleteMany(db, { ids: [ID], attempts: [ATTEMPT], results: [null], runMs: [0], workerId: WORKER_ID }),
  );
  const carries = (v: unknown, marker: number) => (Array.isArray(v) ? v.length === 1 && v[0] === marker : v === `{${marker}}`);
  const claimTypes = await parameterTypes(client, claim.text);
  const completeTypes = await parameterTypes(client, complete.text);
  if (claimTypes.length !== claim.values.length || completeTypes.length !== complete.values.length) {
    throw new Error('ceiling: parameter count differs from the values sent');
  }
  const claimVars = claim.values.map((v, k) => `  _c${k + 1} ${claimTypes[k]} := ${literal(v, claimTypes[k]!)};`);
  // Each complete parameter is the claimed ids, their attempts, or one value per job.
  const completeSets = complete.values.map((v, k) => {
    const type = completeTypes[k]!;
    if (carries(v, ID)) return `    _d${k + 1} := ids;`;
    if (carries(v, ATTEMPT)) return `    _d${k + 1} := attempts;`;
    const one = Array.isArray(v) ? v : typeof v === 'string' && /^\{[^,]*\}$/.test(v) ? [v.slice(1, -1)] : null;
    if (one && one.length === 1 && type.endsWith('[]')) {
      return `    _d${k + 1} := array_fill(${literal(one[0], type.slice(0, -2))}, ARRAY[cardinality(ids)]);`;
    }
    if (!Array.isArray(v)) return `    _d${k + 1} := ${literal(v, type)};`;
    throw new Error(`ceiling: cannot tell what complete parameter $${k + 1} carries`);
  });
  return `
CREATE PROCEDURE bench_ceiling()
LANGUAGE plpgsql AS $proc$
DECLARE
  -- Named apart from the worker's statements' aliases (its claim reads a subquery r).
  bench_row record;
  ids bigint[];
  attempts integer[];
${claimVars.join('\n')}
${complete.values.map((_, k) => `  _d${k + 1} ${completeTypes[k]};`).join('\n')}
BEGIN
  LOOP
    ids := '{}';
    attempts := '{}';
    FOR bench_row IN SELECT (e->>0)::bigint AS id, (e->>5)::integer AS attempt
             FROM (${bind(claim.text, '_c')}) b, json_array_elements(b.batch::json) e LOOP
      ids := ids || bench_row.id;
      attempts := attempts || bench_row.attempt;
    END LOOP;
    COMMIT;
    EXIT WHEN cardinality(ids) = 0;
${completeSets.join('\n')}
    FOR bench_row IN ${bind(complete.text, '_d')} LOOP
    END LOOP;
    COMMIT;
  END LOOP;
END $proc$`;
}

export async function ceiling(jobs: number, batch: number): Promise<CeilingSample> {
  const url = await freshDatabase('sluice', (u) => sluiceAdapter.install(u));
  const producer = await sluiceAdapter.producer(url, {});
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(await procedureSql(client, batch));
    // Warm-up: plans cached in this session, excluded from the timing.
    await seed(producer, 1_000, -1_000);
    await client.query('CALL bench_ceiling()');
    await seed(producer, jobs);
    await settle(url);
    const t0 = performance.now();
    await client.query('CALL bench_ceiling()');
    const seconds = (performance.now() - t0) / 1000;
    const left = (await client.query<{ n: number }>(sluiceAdapter.remainingSql)).rows[0]!.n;
    if (left !== 0) throw new Error(`ceiling loop left ${left} jobs`);
    return { jobs, seconds, jobsPerSecond: jobs / seconds };
  } finally {
    await client.end();
    await producer.close();
  }
}
