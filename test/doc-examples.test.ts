// Every ```ts and ```sql example in README.md and docs/ runs as written (issue
// 13, point 8): the TypeScript blocks of each document are compiled together
// by tsc against sluice's API, the names they take as given coming from
// test/doc-examples/context.ts; the SQL blocks run against a migrated database
// with seeded data, and every job they enqueue must pass its job's schema.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sluice, defineJob } from '../packages/sluice/src/index.js';
import { parsePayload, type AnyJob } from '../packages/sluice/src/job.js';
import { ROOT, codeBlocks, docFiles, moduleFor, type CodeBlock } from './helpers/doc-blocks.js';
import { createTestDb, type TestDb } from './helpers/db.js';

const OUT = `${ROOT}.tmp/doc-examples/`;
const CONTEXT = `${ROOT}test/doc-examples/context.ts`;
const blocks = docFiles().flatMap(codeBlocks);

describe('TypeScript examples', () => {
  it('compile as written', async () => {
    const contextNames = [...readFileSync(CONTEXT, 'utf8').matchAll(/^export (?:declare )?(?:const|function) (?:(\w+)|\[([^\]]+)\])/gm)].flatMap(
      (m) => (m[1] ? [m[1]] : m[2]!.split(',').map((n) => n.trim())),
    );
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    const modules = new Map<string, (line: number) => string>();
    for (const doc of docFiles()) {
      const ts = blocks.filter((b) => b.doc === doc && b.lang === 'ts');
      if (ts.length === 0) continue;
      const file = `${doc.replace(/[/.]/g, '_')}.ts`;
      const { source, lineOf } = moduleFor(ts, '../../test/doc-examples/context.js', contextNames);
      writeFileSync(`${OUT}${file}`, source);
      modules.set(file, lineOf);
    }
    writeFileSync(
      `${OUT}tsconfig.json`,
      JSON.stringify({
        extends: '../../tsconfig.base.json',
        compilerOptions: {
          noEmit: true,
          // Each entry point of the packages as the workspace resolves it (their exports point at src/).
          paths: Object.fromEntries(
            (['sluice', 'dashboard'] as const).flatMap((dir) => {
              const pkg = JSON.parse(readFileSync(`${ROOT}packages/${dir}/package.json`, 'utf8')) as { name: string; exports: Record<string, string> };
              return Object.entries(pkg.exports).map(([sub, target]) => [`${pkg.name}${sub.slice(1)}`, [`../../packages/${dir}/${target}`]]);
            }),
          ),
        },
        files: [...modules.keys(), '../../test/doc-examples/context.ts'],
      }),
    );
    const output = await new Promise<string>((resolve) =>
      execFile(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${OUT}tsconfig.json`], { cwd: OUT }, (_err, stdout) => resolve(stdout)),
    );
    // Each error points at the document line it came from.
    const errors = output
      .split('\n')
      .filter((l) => /error TS\d+/.test(l))
      .map((l) => {
        const m = /^([^(]+)\((\d+),\d+\): (.*)$/.exec(l);
        const lineOf = m && modules.get(m[1]!);
        return lineOf ? `${lineOf(Number(m[2]))}: ${m![3]}` : l;
      });
    expect(errors).toEqual([]);
    expect(modules.size).toBeGreaterThan(0);
  }, 180_000);
});

describe('SQL examples', () => {
  let db: TestDb;
  let jobs: Map<string, AnyJob>;
  beforeAll(async () => {
    db = await createTestDb();
    // The same jobs the TypeScript examples define, registered as a worker would.
    const { exampleJobs } = (await import('./doc-examples/context.js')) as { exampleJobs: AnyJob[] };
    jobs = new Map(exampleJobs.map((j) => [j.name, j]));
    const sluice = new Sluice({ pool: db.pool, jobs: exampleJobs });
    await sluice.registerJobs();
    await seed(db);
  });
  afterAll(async () => {
    await db.drop();
  });

  const sql = blocks.filter((b) => b.lang === 'sql');
  it.each(sql.map((b) => [`${b.doc}:${b.line}`, b] as [string, CodeBlock]))('%s runs, and what it enqueues is valid', async (_where, block) => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(block.code);
      // A job written by SQL is checked by the worker against its schema; one that fails dies at once.
      const { rows } = await client.query<{ name: string; payload: unknown }>(`SELECT name, payload FROM sluice.jobs WHERE created_at >= now()`);
      for (const r of rows) {
        const job = jobs.get(r.name);
        if (job) expect(() => parsePayload(job, r.payload), `${r.name} enqueued by ${block.doc}:${block.line}`).not.toThrow();
      }
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

/** What the SQL examples look at: a live job, dead jobs 42 and 43, a cron schedule, a worker. */
async function seed(db: TestDb): Promise<void> {
  const q = (text: string) => db.pool.query(text);
  const seedJob = defineJob({ name: 'report.build', queue: 'reports', schema: (await import('zod')).z.object({ kind: (await import('zod')).z.string() }) });
  await new Sluice({ pool: db.pool }).enqueue(seedJob, { kind: 'daily' });
  for (const id of [42, 43]) {
    await q(`INSERT INTO sluice.dead_jobs (id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
               backoff_factor, backoff_max_ms, backoff_jitter, reason, errors, created_at, run_at)
             VALUES (${id}, 'emails', 'email.send', '{}', 0, 3, 3, 'fixed', 0, 1, 0, 0, 'exhausted',
               '[{"attempt":3,"at":"2026-01-01T00:00:00Z","kind":"error","name":"Error","message":"boom"}]', now(), now())`);
  }
  await q(`INSERT INTO sluice.cron_schedules (name, cron, job_name, payload) VALUES ('nightly-report', '0 3 * * *', 'report.build', '{"kind":"daily"}')`);
}
