// Signed-in sessions (sluice.dashboard_sessions): a cookie is a session only
// while its row exists, so signing out ends it on every instance at once.
import type { Queryable } from 'sluice/admin';

/** Records a new session; expired ones are cleared on the way. */
export async function sessionCreate(db: Queryable, a: { id: string; expiresAt: Date }): Promise<void> {
  await db.query({
    name: 'sluice_dashboard_session_create',
    text: `WITH expired AS (DELETE FROM sluice.dashboard_sessions WHERE expires_at <= now())
           INSERT INTO sluice.dashboard_sessions (id, expires_at) VALUES ($1, $2)`,
    values: [a.id, a.expiresAt],
  });
}

export async function sessionExists(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'sluice_dashboard_session_exists',
    text: `SELECT 1 FROM sluice.dashboard_sessions WHERE id = $1 AND expires_at > now()`,
    values: [id],
  });
  return (rowCount ?? 0) > 0;
}

export async function sessionDelete(db: Queryable, id: string): Promise<void> {
  await db.query({ name: 'sluice_dashboard_session_delete', text: `DELETE FROM sluice.dashboard_sessions WHERE id = $1`, values: [id] });
}
