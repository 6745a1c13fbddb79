// The shape of schema sluice as PostgreSQL itself prints it (pg_get_*def), so
// two databases can be compared without parsing SQL text.
import type pg from 'pg';

type Db = pg.Pool | pg.ClientBase;

/** Functions by signature, views by name: definition and privileges. */
export async function routinesAndViews(db: Db): Promise<Record<string, { def: string; acl: string | null }>> {
  const { rows } = await db.query<{ key: string; def: string; acl: string | null }>(
    `SELECT 'function ' || p.oid::regprocedure::text AS key, pg_get_functiondef(p.oid) AS def, p.proacl::text AS acl
     FROM pg_proc p WHERE p.pronamespace = 'sluice'::regnamespace
     UNION ALL
     SELECT 'view ' || c.oid::regclass::text, pg_get_viewdef(c.oid), c.relacl::text
     FROM pg_class c WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind = 'v'
     ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.key, { def: r.def, acl: r.acl }]));
}

// Day partitions of job_history are named after the day they were created
// for, so two databases migrated on different days differ in them by design.
const DAY_PARTITION = `'^job_history_[0-9]{8}'`;

/** Everything migrate() shapes in schema sluice, except the rows and the day partitions. */
export async function schemaShape(db: Db): Promise<Record<string, unknown>> {
  const q = async (sql: string) => (await db.query(sql)).rows;
  return {
    routinesAndViews: await routinesAndViews(db),
    relations: await q(
      `SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text AS options, c.relispartition,
              pg_get_expr(c.relpartbound, c.oid) AS bound, c.relacl::text AS acl
       FROM pg_class c WHERE c.relnamespace = 'sluice'::regnamespace AND c.relname !~ ${DAY_PARTITION}
       ORDER BY c.relname`,
    ),
    columns: await q(
      `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, a.attidentity,
              a.attgenerated, pg_get_expr(d.adbin, d.adrelid) AS default_value,
              row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind IN ('r', 'p', 'v')
         AND c.relname !~ ${DAY_PARTITION} AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY c.relname, a.attnum`,
    ),
    indexes: await q(
      `SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       WHERE c.relnamespace = 'sluice'::regnamespace AND c.relname !~ ${DAY_PARTITION} ORDER BY 1`,
    ),
    constraints: await q(
      `SELECT r.conrelid::regclass::text AS rel, r.conname, pg_get_constraintdef(r.oid) AS def FROM pg_constraint r
       JOIN pg_class c ON c.oid = r.conrelid
       WHERE c.relnamespace = 'sluice'::regnamespace AND c.relname !~ ${DAY_PARTITION} ORDER BY 1, 2`,
    ),
    triggers: await q(
      `SELECT pg_get_triggerdef(t.oid) AS def FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
       WHERE c.relnamespace = 'sluice'::regnamespace AND NOT t.tgisinternal ORDER BY 1`,
    ),
    statistics: await q(
      `SELECT pg_get_statisticsobjdef(s.oid) AS def, s.stxstattarget FROM pg_statistic_ext s
       WHERE s.stxnamespace = 'sluice'::regnamespace ORDER BY 1`,
    ),
    migrations: await q(`SELECT created_at::text FROM sluice.__migrations ORDER BY created_at`),
    functionFiles: await q(`SELECT name, hash FROM sluice.__functions ORDER BY name`),
  };
}
