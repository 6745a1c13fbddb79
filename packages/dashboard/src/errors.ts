// Named errors of the dashboard. Messages name the option at fault; they
// never carry a token, a password or a payload.
import { SluiceError } from 'sluice';

/** PostgreSQL's insufficient_privilege: the database role may not do this. */
export const PG_INSUFFICIENT_PRIVILEGE = '42501';

/** An option of createDashboard()/startDashboard() is missing or wrong. */
export class DashboardConfigError extends SluiceError {
  override name = 'DashboardConfigError';
  constructor(
    readonly option: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${option}: ${reason}`, options);
  }
}

/** The dashboard's server could not listen. */
export class DashboardServerError extends SluiceError {
  override name = 'DashboardServerError';
}

/** A request asked for an action the dashboard refuses (read-only mode, bad CSRF token, bad input). */
export class DashboardRequestError extends SluiceError {
  override name = 'DashboardRequestError';
  constructor(
    readonly status: 400 | 403 | 404 | 409,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
