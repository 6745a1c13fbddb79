// The bare-client ceiling: the least a Node client can do per job on this
// server, as a reference for what PostgreSQL and node-postgres cost. A
// minimal jobs table, two connections each looping: claim up to 500 with one
// SKIP LOCKED UPDATE, call the handler for each, then finish the batch with
// one statement (DELETE, or DELETE → INSERT into a history table). No retries,
// no metrics, no heartbeat, no validation. Claims and finishes commit without
// waiting for the WAL flush, as sluice's do. The SQL and the loop are in
// bare-client.mjs, which the soak's plain-node child runs too.
import pg from 'pg';
import { SCHEMA, startBareClient } from './bare-client.mjs';
import type { Payload, SystemAdapter } from './types.js';
import { packageVersion } from './version.js';
import { REMAINING_SQL } from './queries.js';

export const bareAdapter: SystemAdapter = {
  key: 'bare',
  async version() {
    return `node-postgres ${packageVersion('pg', import.meta.url)}`;
  },
  async install(url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(SCHEMA);
    } finally {
      await client.end();
    }
  },
  async producer(url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return {
      enqueueOne: async (p: Payload) => void (await client.query('INSERT INTO bare.jobs (payload) VALUES ($1)', [p])),
      enqueueMany: async (ps: Payload[]) =>
        void (await client.query('INSERT INTO bare.jobs (payload) SELECT * FROM jsonb_array_elements($1::jsonb)', [JSON.stringify(ps)])),
      close: () => client.end(),
    };
  },
  async startWorker(url, options, onJob) {
    return startBareClient(url, { keepHistory: options.history !== false, onJob });
  },
  remainingSql: REMAINING_SQL.bare,
};
