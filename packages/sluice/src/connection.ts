// The pool sluice opens when the caller gives a connection string instead of a pool.
import pg from 'pg';
import type { Logger } from 'pino';
import { POOL_IDLE_TIMEOUT_MS_DEFAULT, POOL_SIZE_DEFAULT } from './config.js';
import { OptionsConflictError, ValidationError } from './errors.js';
import { isGivenUp } from './given-up.js';

export interface ConnectionOptions {
  /** A pool to use; sluice never ends a pool it did not create. */
  pool?: pg.Pool;
  /** Used when no pool is given. Default: the DATABASE_URL environment variable. */
  connectionString?: string;
  /** Connections in the pool sluice creates. Default 4. */
  poolSize?: number;
  /**
   * 'transaction' when connectionString goes through a pooler in transaction
   * mode (PgBouncer): sluice then sends no named prepared statements and does
   * not LISTEN on it. Default 'session'. A pool you pass yourself should be
   * created with `Client: UnpreparedClient` in that case.
   */
  poolMode?: 'session' | 'transaction';
  /**
   * A direct connection (not through the pooler) for LISTEN. Default: a
   * connection of the pool in session mode; none in transaction mode, where
   * workers then poll.
   */
  listenConnectionString?: string;
  /**
   * A read replica for what only reads: queue stats, job lists and details
   * shown to people, metrics, the dashboard's pages. Never used for a write,
   * a claim, or a read that must see the caller's own writes (getJob,
   * waitFor). Default: the main pool. Its figures trail the primary by the
   * replica's lag, which `sluice stats` and the dashboard show.
   */
  readConnectionString?: string;
  /** A pool on a read replica instead of readConnectionString; sluice never ends it. */
  readPool?: pg.Pool;
}

/**
 * The pg Client of the pools sluice opens. pg emits a connection error that
 * arrives between queries (server restart, terminated backend) as an 'error'
 * event, and an event with no listener ends the process. The pool and the
 * running query still see the error; this listener only keeps it from
 * crashing the process in the gaps they do not cover.
 */
export class SluiceClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    this.on('error', () => {});
  }
}

/** A pg Client that never names its statements, so nothing is prepared on a pooled server connection. */
export class UnpreparedClient extends SluiceClient {
  override query(...args: unknown[]): never {
    const [config, ...rest] = args;
    if (config && typeof config === 'object' && 'name' in config) {
      const { name: _name, ...unnamed } = config as { name?: string };
      return (super.query as (...a: unknown[]) => never)(unnamed, ...rest);
    }
    return (super.query as (...a: unknown[]) => never)(...args);
  }
}

export interface OwnedPool {
  pool: pg.Pool;
  owned: boolean;
}

/**
 * Refuses connection options that cannot work together: a pool of one
 * connection that LISTEN would hold (a worker's for good, a client's while it
 * waits: every other query, the waiter's own included, then waits forever),
 * or pool settings given beside a pool of the caller's, which they would not
 * change.
 */
function checkConnectionOptions(options: ConnectionOptions): void {
  for (const field of ['pool', 'readPool'] as const) {
    const pool = options[field] as unknown;
    if (pool !== undefined && typeof (pool as pg.Pool | null)?.connect !== 'function') throw new ValidationError(field, 'expected a pg Pool');
  }
  for (const field of ['connectionString', 'listenConnectionString', 'readConnectionString'] as const) {
    if (options[field] !== undefined) checkConnectionString(field, options[field]);
  }
  if (options.poolMode !== undefined && options.poolMode !== 'session' && options.poolMode !== 'transaction') {
    throw new ValidationError('poolMode', "must be 'session' or 'transaction'");
  }
  if (options.readPool && options.readConnectionString !== undefined) {
    throw new OptionsConflictError(['readPool', 'readConnectionString'], 'each names the read replica; give one or the other');
  }
  if (options.pool) {
    for (const field of ['connectionString', 'poolSize'] as const) {
      if (options[field] !== undefined) {
        throw new OptionsConflictError(['pool', field], `${field} configures the pool sluice creates; give one or the other`);
      }
    }
  }
  if (options.pool && options.poolMode === 'transaction' && !isUnprepared(options.pool)) {
    throw new OptionsConflictError(
      ['pool', 'poolMode'],
      "a pool behind a transaction pooler must not prepare named statements: create it with `Client: UnpreparedClient`",
    );
  }
  if (options.poolSize !== undefined && (!Number.isInteger(options.poolSize) || options.poolSize < 1 || options.poolSize > 1_000)) {
    throw new ValidationError('poolSize', 'must be an integer from 1 to 1000');
  }
  const size = options.pool ? options.pool.options.max : (options.poolSize ?? POOL_SIZE_DEFAULT);
  if (size < 2 && options.poolMode !== 'transaction' && options.listenConnectionString === undefined) {
    throw new OptionsConflictError(
      [options.pool ? 'pool' : 'poolSize', 'listenConnectionString'],
      'LISTEN holds one connection of the pool, so a pool of one leaves none for queries: give at least 2 connections, or a listenConnectionString',
    );
  }
}

/**
 * Refuses a connection string pg would refuse only at the first connection
 * (a TypeError from deep inside pg, or an 'Invalid URL'), long after the
 * option was given. pg's Client parses it as it is constructed, without
 * connecting: the same parser, so what it accepts here it accepts then.
 */
function checkConnectionString(field: string, value: unknown): void {
  if (typeof value !== 'string') throw new ValidationError(field, 'must be a string (a postgres:// URL)');
  try {
    new pg.Client({ connectionString: value });
  } catch (err) {
    // pg's message may quote the string, and with it a password.
    throw new ValidationError(field, 'is not a connection string pg can use', { cause: err });
  }
}

function isUnprepared(pool: pg.Pool): boolean {
  const client = (pool.options as { Client?: unknown }).Client;
  return typeof client === 'function' && (client === UnpreparedClient || client.prototype instanceof UnpreparedClient);
}

export function openPool(options: ConnectionOptions, logger: Logger): OwnedPool {
  checkConnectionOptions(options);
  if (options.pool) return { pool: options.pool, owned: false };
  const connectionString = options.connectionString ?? process.env.DATABASE_URL;
  if (!connectionString) {
    throw new ValidationError('connectionString', 'give a pool or a connectionString, or set DATABASE_URL');
  }
  if (options.connectionString === undefined) checkConnectionString('DATABASE_URL', connectionString);
  const pool = new pg.Pool({
    connectionString,
    max: options.poolSize ?? POOL_SIZE_DEFAULT,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS_DEFAULT,
    Client: options.poolMode === 'transaction' ? UnpreparedClient : SluiceClient,
    // Idle connections do not keep the process alive: a script that enqueued
    // or waited ends by itself. A worker stays up on its own timers.
    allowExitOnIdle: true,
  });
  // An idle client that loses its server emits on the pool; without a
  // listener node would crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection failed'));
  return { pool, owned: true };
}

/** The pool for reads (see readConnectionString): its own, the one given, or the main pool. */
export function openReadPool(options: ConnectionOptions, main: pg.Pool, logger: Logger): OwnedPool {
  if (options.readPool) return { pool: options.readPool, owned: false };
  if (!options.readConnectionString) return { pool: main, owned: false };
  const pool = new pg.Pool({
    connectionString: options.readConnectionString,
    max: options.poolSize ?? POOL_SIZE_DEFAULT,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS_DEFAULT,
    Client: options.poolMode === 'transaction' ? UnpreparedClient : SluiceClient,
    // As the main pool: a script that only read stats ends by itself.
    allowExitOnIdle: true,
  });
  pool.on('error', (err) => logger.warn({ err }, 'idle read-replica connection failed'));
  return { pool, owned: true };
}

/**
 * The pool the LISTEN session comes from: a one-connection pool on
 * listenConnectionString, else the main pool in session mode, else none
 * (transaction pooling without a direct connection: poll only). A worker and
 * a client each listen on one session (a client's is shared by waitFor and
 * enqueues waiting for room: client-listener.ts).
 */
export function openListenPool(options: ConnectionOptions, main: pg.Pool, logger: Logger): OwnedPool | null {
  if (options.listenConnectionString) {
    const pool = new pg.Pool({ connectionString: options.listenConnectionString, max: 1, Client: SluiceClient, allowExitOnIdle: true });
    pool.on('error', (err) => logger.warn({ err }, 'idle LISTEN connection failed'));
    return { pool, owned: true };
  }
  if (options.poolMode === 'transaction') return null;
  return { pool: main, owned: false };
}

/**
 * Runs fn with a client checked out of the pool. While it is checked out, a
 * connection error between two queries (the server restarted, the backend
 * was terminated) is emitted on the client, where no listener would crash
 * the process: one is attached for the duration, and a client that failed is
 * destroyed rather than returned to the pool.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (err) {
    broken ??= err instanceof Error && (isGivenUp(err) || /terminat|connection|ECONNRESET/i.test(err.message)) ? err : undefined;
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
