// Cron schedules as the cron page shows them. Not sluice.schedules.list():
// that reads every payload, and a viewer who may not see payloads must not
// have them read at all; it also reads the primary, where pages read the
// replica.
import type { Queryable } from 'sluice/admin';

export interface CronScheduleView {
  name: string;
  cron: string;
  timezone: string;
  jobName: string;
  enabled: boolean;
  misfire: string;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastError: string | null;
  declaredIn: 'code' | 'sql';
  service: string | null;
  /** Undefined when the viewer may not see payloads: it is then never read from the database. */
  payload?: unknown;
}

interface Row {
  name: string;
  cron: string;
  timezone: string;
  job_name: string;
  enabled: boolean;
  misfire: string;
  next_run_at: Date | null;
  last_run_at: Date | null;
  last_error: string | null;
  declared_in: 'code' | 'sql';
  service: string | null;
  payload?: unknown;
}

export async function cronSchedules(db: Queryable, show: { payloads: boolean }): Promise<CronScheduleView[]> {
  const columns = `name, cron, timezone, job_name, enabled, misfire, next_run_at, last_run_at, last_error, declared_in, service`;
  const { rows } = await db.query<Row>(
    show.payloads
      ? { name: 'sluice_dashboard_cron_with_payloads', text: `SELECT ${columns}, payload FROM sluice.cron_schedules ORDER BY name` }
      : { name: 'sluice_dashboard_cron', text: `SELECT ${columns} FROM sluice.cron_schedules ORDER BY name` },
  );
  return rows.map((r) => ({
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    jobName: r.job_name,
    enabled: r.enabled,
    misfire: r.misfire,
    nextRunAt: r.next_run_at,
    lastRunAt: r.last_run_at,
    lastError: r.last_error,
    declaredIn: r.declared_in,
    service: r.service,
    ...(show.payloads ? { payload: r.payload } : {}),
  }));
}
