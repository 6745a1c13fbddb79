-- sluice roles: three group roles (NOLOGIN) and what each may do.
--
--   sluice_owner     owns the sluice schema and everything in it; runs migrations (DDL)
--   sluice_runtime   enqueues, claims, completes, fails, heartbeats, prunes; no DDL
--   sluice_readonly  reads tables and views (dashboards, `sluice stats`, Prometheus)
--
-- Run as a superuser (or a CREATEROLE role that owns the sluice schema), connected to
-- the application's database, after `sluice migrate`, and again after every upgrade:
--
--   sluice migrate && sluice roles | psql "$DATABASE_URL" -v ON_ERROR_STOP=1
--
-- It is idempotent and repairs grants: it revokes what it does not list. Other names:
-- `sluice roles --owner x --runtime y --readonly z` prints `SET sluice.owner_role = 'x';`
-- (and so on) above this script, which reads them below.
--
-- Then give people and services logins that belong to the group roles:
--
--   CREATE ROLE app_migrate LOGIN PASSWORD '...' IN ROLE sluice_owner;
--   ALTER ROLE app_migrate SET role = 'sluice_owner';  -- what it creates belongs to the group
--   CREATE ROLE app_worker  LOGIN PASSWORD '...' IN ROLE sluice_runtime;
--   CREATE ROLE grafana     LOGIN PASSWORD '...' IN ROLE sluice_readonly;
--
-- The runtime role gets, table by table, only the row operations sluice performs on it
-- (the `runtime_writes` list below); the migration bookkeeping (`__migrations`, and any
-- other `__` table) is the owner's alone, readable by the others. A table this script does
-- not list stays read-only for the runtime role until a newer script lists it, which is why
-- it runs again after each upgrade. The read-only role's only write is to
-- `dashboard_sessions` (a read-only dashboard still signs people in and out).
--
-- Functions: the ones the runtime role calls run with its own rights (SECURITY INVOKER),
-- so the table grants bound what they can do. Partition creation and dropping are DDL:
-- the runtime role reaches them only through sluice.create_history_partitions and
-- sluice.drop_history_partitions, which run as the owner (SECURITY DEFINER) and do
-- nothing else. No role but the owner may run any other SECURITY DEFINER function that
-- writes (`definer_for_runtime` lists the ones the runtime role may run).

DO $roles$
DECLARE
  owner_role    text := coalesce(nullif(current_setting('sluice.owner_role', true), ''), 'sluice_owner');
  runtime_role  text := coalesce(nullif(current_setting('sluice.runtime_role', true), ''), 'sluice_runtime');
  readonly_role text := coalesce(nullif(current_setting('sluice.readonly_role', true), ''), 'sluice_readonly');
  -- Row operations the runtime role needs, per table. SELECT is given on every table.
  runtime_writes constant jsonb := '{
    "jobs":             ["INSERT", "UPDATE", "DELETE"],
    "job_history":      ["INSERT", "DELETE"],
    "dead_jobs":        ["INSERT", "DELETE"],
    "queues":           ["INSERT", "UPDATE"],
    "job_types":        ["INSERT", "UPDATE"],
    "workers":          ["INSERT", "UPDATE", "DELETE"],
    "cron_schedules":   ["INSERT", "UPDATE", "DELETE"],
    "metrics_minutely": ["INSERT", "UPDATE", "DELETE"],
    "batches":          ["INSERT", "UPDATE"],
    "subscriptions":    ["INSERT"],
    "dashboard_sessions": ["INSERT", "DELETE"],
    "alert_states":     ["INSERT", "DELETE"]
  }';
  -- SECURITY DEFINER functions the runtime role may call (the readonly role: those open to PUBLIC).
  definer_for_runtime constant text[] := ARRAY['create_history_partitions', 'drop_history_partitions', 'mcv_estimates'];
  role_name text;
  obj record;
  privilege text;
  seq text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY[owner_role, runtime_role, readonly_role] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
    END IF;
  END LOOP;

  -- Migrations run CREATE SCHEMA IF NOT EXISTS, which needs CREATE on the database.
  EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), owner_role);
  IF to_regnamespace('sluice') IS NULL THEN
    EXECUTE format('CREATE SCHEMA sluice AUTHORIZATION %I', owner_role);
  ELSE
    -- Already migrated by another role: hand the schema and its objects over.
    EXECUTE format('ALTER SCHEMA sluice OWNER TO %I', owner_role);
    FOR obj IN
      SELECT c.relname, c.relkind FROM pg_class c
      WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        -- Identity and serial sequences follow their table.
        AND NOT (c.relkind = 'S' AND EXISTS (
          SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    LOOP
      EXECUTE format('ALTER %s sluice.%I OWNER TO %I',
        CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
        obj.relname, owner_role);
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure AS fn FROM pg_proc p WHERE p.pronamespace = 'sluice'::regnamespace LOOP
      EXECUTE format('ALTER ROUTINE %s OWNER TO %I', obj.fn, owner_role);
    END LOOP;
    FOR obj IN SELECT s.stxname FROM pg_statistic_ext s WHERE s.stxnamespace = 'sluice'::regnamespace LOOP
      EXECUTE format('ALTER STATISTICS sluice.%I OWNER TO %I', obj.stxname, owner_role);
    END LOOP;
  END IF;

  -- Nobody else creates objects in the schema.
  EXECUTE 'REVOKE CREATE ON SCHEMA sluice FROM PUBLIC';
  EXECUTE format('GRANT USAGE ON SCHEMA sluice TO %I, %I', runtime_role, readonly_role);

  -- Start from nothing, so running the script again also takes back what it no longer lists.
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA sluice FROM %I, %I', runtime_role, readonly_role);
  EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA sluice FROM %I, %I', runtime_role, readonly_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice REVOKE ALL ON TABLES FROM %I, %I', owner_role, runtime_role, readonly_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice REVOKE ALL ON SEQUENCES FROM %I, %I', owner_role, runtime_role, readonly_role);

  -- Both read everything, tables that later migrations create included.
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA sluice TO %I, %I', runtime_role, readonly_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice GRANT SELECT ON TABLES TO %I, %I', owner_role, runtime_role, readonly_role);

  -- Runtime writes, table by table; an identity column's sequence goes with its table's INSERT.
  FOR obj IN
    SELECT w.key AS table_name, w.value AS privileges FROM jsonb_each(runtime_writes) w
    WHERE to_regclass(format('sluice.%I', w.key)) IS NOT NULL
  LOOP
    FOR privilege IN SELECT jsonb_array_elements_text(obj.privileges) LOOP
      EXECUTE format('GRANT %s ON sluice.%I TO %I', privilege, obj.table_name, runtime_role);
    END LOOP;
    FOR seq IN
      SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
      WHERE d.refobjid = format('sluice.%I', obj.table_name)::regclass AND d.classid = 'pg_class'::regclass
        AND s.relkind = 'S' AND d.deptype IN ('a', 'i') AND obj.privileges ? 'INSERT'
    LOOP
      EXECUTE format('GRANT USAGE ON SEQUENCE sluice.%I TO %I', seq, runtime_role);
    END LOOP;
  END LOOP;
  -- The read-only role's one write: its dashboard signs people in and out (a session is a row).
  IF to_regclass('sluice.dashboard_sessions') IS NOT NULL THEN
    EXECUTE format('GRANT INSERT, DELETE ON sluice.dashboard_sessions TO %I', readonly_role);
  END IF;
  FOR obj IN
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = 'sluice'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname NOT LIKE '\_\_%' AND NOT runtime_writes ? c.relname
  LOOP
    RAISE NOTICE 'sluice.% is not listed by this script: the runtime role may only read it (is this script older than the schema?)', obj.relname;
  END LOOP;
  IF to_regclass('sluice.jobs') IS NULL THEN
    RAISE NOTICE 'the sluice schema has no tables yet: run this script again after sluice migrate';
  END IF;

  -- Functions: the runtime role may execute every SECURITY INVOKER one (they run with its
  -- rights) and the SECURITY DEFINER ones listed above; no other SECURITY DEFINER one.
  EXECUTE format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA sluice TO %I', runtime_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice GRANT EXECUTE ON ROUTINES TO %I', owner_role, runtime_role);
  FOR obj IN
    SELECT p.oid::regprocedure AS fn, p.proname FROM pg_proc p
    WHERE p.pronamespace = 'sluice'::regnamespace AND p.prosecdef AND p.proname <> ALL (definer_for_runtime)
  LOOP
    RAISE NOTICE '% is SECURITY DEFINER and not listed by this script: only its owner may run it', obj.fn;
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I, %I', obj.fn, runtime_role, readonly_role);
  END LOOP;

  -- `sluice doctor` sees other roles' long transactions only with pg_read_all_stats.
  BEGIN
    EXECUTE format('GRANT pg_read_all_stats TO %I', owner_role);
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not granted pg_read_all_stats to %: sluice doctor will see only its own sessions', owner_role;
  END;
END $roles$;
