// Where the demo runs. Without DATABASE_URL it starts a throwaway embedded
// PostgreSQL; with it, it works in a fresh database of its own on that server
// and drops it afterwards, so the user's databases are never touched.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startEmbeddedPostgres } from './embedded-postgres.js';

export interface DemoDatabase {
  url: string;
  /** One line for the reader: which server, which database, what happens to it. */
  description: string;
  close(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

// Credentials stay out of the output.
function hostOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}`;
}

export async function openDemoDatabase(): Promise<DemoDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const server = await startEmbeddedPostgres();
    return {
      url: server.url,
      description: `an embedded PostgreSQL on ${hostOf(server.url)} (temporary data directory, removed at the end)`,
      close: () => server.stop(),
    };
  }
  // Generated from hex digits only, so it is safe to use as an identifier.
  const name = `sluice_demo_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(serverUrl, name),
    description: `DATABASE_URL's server ${hostOf(serverUrl)}, in a new database ${name} (dropped at the end)`,
    async close() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        // FORCE: a connection left over after a failed run must not keep the database alive.
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
