// The optional HTTP API: enqueue for the job types you list, job status,
// queue stats and dead-letter replay. Every route sees only those job types
// (and their queues): any other job answers exactly as a missing one would,
// so the API does not even reveal that it exists. It is a Hono app: mount it
// in your own Hono app (`app.route('/jobs-api', api)`), hand `api.fetch` to
// any fetch server, or run it alone with startHttpApi().
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Sluice } from '../client.js';
import { NAME_PATTERN, enqueueOptionsSchema, parseOptions } from '../config.js';
import { JobNotFoundError, ValidationError } from '../errors.js';
import type { JobDefinition } from '../job.js';
import { sluiceLogger } from '../logger.js';
import { deadLockNames } from '../sql/dead-jobs.js';
import { queueStatsAll } from '../sql/metrics.js';
import { inTransaction } from '../transaction.js';
import { requireBearer } from './auth.js';
import { readJsonObject } from './body.js';
import { SignInThrottle } from './sign-in-throttle.js';
import { errorResponse, problem } from './problem.js';

/** Largest request body accepted, in bytes (1 MiB, the default payload limit). */
export const HTTP_MAX_BODY_BYTES_DEFAULT = 1_048_576;
/** Shortest bearer token accepted, in characters. */
export const HTTP_TOKEN_MIN_LENGTH = 16;

export interface HttpApiOptions {
  sluice: Sluice;
  /** The job types this API exposes, on every route; any other job or queue is 404. */
  jobs: readonly JobDefinition<any>[];
  /** Clients send `Authorization: Bearer <token>`. At least 16 characters. */
  token: string;
  /** Largest request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Wrong tokens one client address may send before it is locked out (429, growing). Default 5. */
  maxFailedSignInsPerAddress?: number;
  /** Wrong tokens from all addresses per minute before addresses with no recent success are locked out. Default 100. */
  maxFailedSignInsPerMinute?: number;
  /**
   * Take the client's address from the last X-Forwarded-For entry instead of
   * the socket. Only behind a proxy that sets it: otherwise a client picks
   * its own address and escapes the lockout. Default false.
   */
  trustProxy?: boolean;
  logger?: Logger;
}

const enqueueBodySchema = z.strictObject({
  payload: z.unknown(),
  runAt: z.iso.datetime({ offset: true }).optional(),
  delayMs: enqueueOptionsSchema.shape.delayMs,
  priority: enqueueOptionsSchema.shape.priority,
  maxAttempts: enqueueOptionsSchema.shape.maxAttempts,
  timeoutMs: enqueueOptionsSchema.shape.timeoutMs,
  uniqueKey: enqueueOptionsSchema.shape.uniqueKey,
  tags: enqueueOptionsSchema.shape.tags,
});

const replayBodySchema = z.strictObject({
  ids: z.array(z.number().int().positive().max(Number.MAX_SAFE_INTEGER)).min(1).max(1000),
});

const optionsSchema = z.object({
  // A header carries the token as one run of visible characters (auth.ts): one with a space or a control character could never match.
  token: z
    .string()
    .min(HTTP_TOKEN_MIN_LENGTH)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  maxBodyBytes: z.number().int().min(1).max(100 * 1_048_576).optional(),
  maxFailedSignInsPerAddress: z.number().int().min(1).max(1_000_000).optional(),
  maxFailedSignInsPerMinute: z.number().int().min(1).max(1_000_000).optional(),
  trustProxy: z.boolean().optional(),
});

/** The allow-list by name. Two definitions of one name would leave one silently unreachable. */
function exposedJobs(list: unknown): Map<string, JobDefinition<any>> {
  if (!Array.isArray(list)) throw new ValidationError('httpApi.jobs', 'must be an array of job definitions');
  const jobs = new Map<string, JobDefinition<any>>();
  for (const [i, j] of list.entries()) {
    const job = j as Partial<JobDefinition<any>> | null;
    if (typeof job !== 'object' || job === null || typeof job.name !== 'string' || typeof job.queue !== 'string') {
      throw new ValidationError(`httpApi.jobs.${i}`, 'expected a job definition (defineJob)');
    }
    const seen = jobs.get(job.name);
    if (seen && seen !== job) throw new ValidationError(`httpApi.jobs.${i}`, `a second definition of job "${job.name}": list each job once`);
    jobs.set(job.name, job as JobDefinition<any>);
  }
  return jobs;
}

export function createHttpApi(options: HttpApiOptions): Hono {
  const opts = parseOptions(
    optionsSchema,
    {
      token: options?.token,
      maxBodyBytes: options?.maxBodyBytes,
      maxFailedSignInsPerAddress: options?.maxFailedSignInsPerAddress,
      maxFailedSignInsPerMinute: options?.maxFailedSignInsPerMinute,
      trustProxy: options?.trustProxy,
    },
    'httpApi',
  );
  if (!options.sluice) throw new ValidationError('httpApi.sluice', 'is required');
  const jobs = exposedJobs(options.jobs);
  const { sluice } = options;
  const logger = sluiceLogger(options.logger).child({ component: 'http-api' });
  const queues = new Set([...jobs.values()].map((j) => j.queue));
  const app = new Hono();

  app.onError((err, c) => errorResponse(c, err, logger));
  app.notFound((c) => problem(c, 404, 'not_found', 'no such route'));
  app.use('*', requireBearer(opts.token, new SignInThrottle(opts), opts.trustProxy ?? false));
  // Every route reads sluice's tables: an unmigrated database is one clear 503.
  app.use('*', async (_c, next) => {
    await sluice.ready();
    return next();
  });
  app.use(
    '*',
    bodyLimit({
      maxSize: opts.maxBodyBytes ?? HTTP_MAX_BODY_BYTES_DEFAULT,
      onError: (c) => problem(c, 413, 'body_too_large', `request body is over ${opts.maxBodyBytes ?? HTTP_MAX_BODY_BYTES_DEFAULT} bytes`),
    }),
  );

  app.post('/jobs/:name', async (c) => {
    const name = c.req.param('name');
    if (!NAME_PATTERN.test(name)) return problem(c, 400, 'invalid_request', 'name: job name is not a valid name', { field: 'name' });
    const job = jobs.get(name);
    if (!job) return problem(c, 404, 'unknown_job', `no job type named "${name}" is exposed by this API`);
    const body = parseOptions(enqueueBodySchema, await readJsonObject(c.req.raw), 'body');
    if (!('payload' in body)) throw new ValidationError('body.payload', 'is required');
    const { payload, runAt, ...rest } = body;
    const id = await sluice.enqueue(job, payload as never, { ...rest, ...(runAt ? { runAt: new Date(runAt) } : {}) });
    return c.json({ id }, 201);
  });

  app.get('/jobs/:id', async (c) => {
    const raw = c.req.param('id');
    if (!/^[1-9][0-9]{0,15}$/.test(raw)) return problem(c, 400, 'invalid_request', 'id: must be a positive integer job id', { field: 'id' });
    const job = await sluice.getJob(Number(raw));
    if (!jobs.has(job.name)) throw new JobNotFoundError([job.id]);
    const last = job.errors.at(-1);
    return c.json({
      id: job.id,
      name: job.name,
      queue: job.queue,
      state: job.state,
      attempt: job.attempt,
      maxAttempts: job.maxAttempts,
      createdAt: job.createdAt,
      runAt: job.runAt,
      attemptedAt: job.attemptedAt,
      finishedAt: job.finishedAt,
      lastError: last ? { attempt: last.attempt, at: last.at, kind: last.kind, name: last.name, message: last.message } : null,
    });
  });

  app.get('/queues', async (c) => c.json({ queues: (await queueStatsAll(sluice.pool)).filter((q) => queues.has(q.queue)) }));

  app.get('/queues/:name', async (c) => {
    const name = c.req.param('name');
    if (!NAME_PATTERN.test(name)) return problem(c, 400, 'invalid_request', 'name: queue name is not a valid name', { field: 'name' });
    const [stats] = queues.has(name) ? await queueStatsAll(sluice.pool, name) : [];
    if (!stats) return problem(c, 404, 'not_found', `no queue named "${name}"`);
    return c.json(stats);
  });

  app.post('/dlq/replay', async (c) => {
    const { ids } = parseOptions(replayBodySchema, await readJsonObject(c.req.raw), 'body');
    const replayed = await inTransaction(sluice.pool, undefined, async (tx) => {
      const names = await deadLockNames(tx, ids);
      const hidden = ids.filter((id) => !jobs.has(names.get(id) ?? ''));
      if (hidden.length) throw new JobNotFoundError(hidden, 'dead job');
      return sluice.replayDead(ids, { tx });
    });
    return c.json({ replayed });
  });

  return app;
}
