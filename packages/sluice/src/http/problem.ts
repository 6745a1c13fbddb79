// Error responses: a code a client can branch on and a message that names
// the field at fault. Nothing from the request body is ever echoed back.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import {
  JobNotFoundError,
  PayloadTooLargeError,
  PayloadValidationError,
  QueueFullError,
  ReplayDependencyError,
  SchemaNotMigratedError,
  UniqueKeyConflictError,
  UnknownJobError,
  ValidationError,
} from '../errors.js';
import { safeMessage } from '../log-safety.js';

export function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, extra: object = {}): Response {
  return c.json({ error: { code, message, ...extra } }, status);
}

/** Maps an error thrown by a route to its response; unexpected ones are logged without their details. */
export function errorResponse(c: Context, err: unknown, logger: Logger): Response {
  if (err instanceof PayloadValidationError) {
    return problem(c, 400, 'invalid_payload', `payload for job "${err.jobName}" is invalid`, { issues: err.issues });
  }
  if (err instanceof ValidationError) return problem(c, 400, 'invalid_request', err.message, { field: err.field });
  if (err instanceof PayloadTooLargeError) return problem(c, 413, 'payload_too_large', err.message);
  if (err instanceof UnknownJobError) return problem(c, 404, 'unknown_job', err.message);
  // Backpressure, not a fault: the client may try again later.
  if (err instanceof QueueFullError) return problem(c, 503, 'queue_full', err.message);
  if (err instanceof JobNotFoundError) return problem(c, 404, 'not_found', err.message);
  if (err instanceof UniqueKeyConflictError) return problem(c, 409, 'unique_key_conflict', err.message);
  // The parents go unnamed: one may be of a job type this API does not expose.
  if (err instanceof ReplayDependencyError) {
    const ids = [...new Set(err.blocked.map((b) => b.jobId))].join(', ');
    return problem(c, 409, 'dependency_not_completed', `nothing was replayed: dead job(s) ${ids}${err.count > err.blocked.length ? ' and more' : ''} depend on a job that ended without completing and is not replayed with them`);
  }
  if (err instanceof SchemaNotMigratedError) return problem(c, 503, 'schema_not_migrated', err.message);
  const e = err as { name?: string; code?: string };
  // A data exception (SQLSTATE class 22) is the database refusing a value of
  // the request that the checks above let through: the client's fault.
  if (typeof e?.code === 'string' && e.code.startsWith('22')) {
    logger.warn({ err, path: c.req.path }, 'HTTP API request refused by the database');
    return problem(c, 400, 'invalid_request', `a value was refused by the database: ${safeMessage(err)}`);
  }
  // The logger's err serializer (safeError) leaves out what could quote a row.
  logger.error({ err, path: c.req.path }, 'HTTP API request failed');
  return problem(c, 500, 'internal', 'the request could not be completed');
}
