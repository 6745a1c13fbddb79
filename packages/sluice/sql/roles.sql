-- sluice roles: three group roles (NOLOGIN) and what each may do.
--
--   sluice_owner     owns the sluice schema and everything in it; runs migrations (DDL)
--   sluice_runtime   enqueues, claims, completes, fails, heartbeats, prunes; no DDL
--   sluice_readonly  reads tables and views (dashboards, `sluice stats`, Prometheus)
--
-- Run as a superuser (or a CREATEROLE role that owns the sluice schema), connected to
-- the application's database, before or after the first migration:
--
--   sluice roles | psql "$DATABASE_URL" -v ON_ERROR_STOP=1
--
-- It is idempotent: run it again after adding a database or to repair grants. Other names:
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
-- Partition creation and dropping are DDL: the runtime role reaches them only through
-- sluice.create_history_partitions and sluice.drop_history_partitions, which run as the
-- owner (SECURITY DEFINER) and do nothing else.

DO $roles$
DECLARE
  owner_role    text := coalesce(nullif(current_setting('sluice.owner_role', true), ''), 'sluice_owner');
  runtime_role  text := coalesce(nullif(current_setting('sluice.runtime_role', true), ''), 'sluice_runtime');
  readonly_role text := coalesce(nullif(current_setting('sluice.readonly_role', true), ''), 'sluice_readonly');
  role_name text;
  obj record;
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

  -- Runtime: rows only. The functions it calls (enqueue, claim, complete, ...) run with
  -- its own rights, so the table grants are what it can do.
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sluice TO %I', runtime_role);
  EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA sluice TO %I', runtime_role);
  EXECUTE format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA sluice TO %I', runtime_role);
  -- Read-only: SELECT everywhere; functions it may call are the ones open to PUBLIC
  -- (inspection); the two DDL ones are not.
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA sluice TO %I', readonly_role);

  -- Objects later migrations create get the same grants.
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', owner_role, runtime_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', owner_role, runtime_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice GRANT EXECUTE ON ROUTINES TO %I', owner_role, runtime_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA sluice GRANT SELECT ON TABLES TO %I', owner_role, readonly_role);

  -- `sluice doctor` sees other roles' long transactions only with pg_read_all_stats.
  BEGIN
    EXECUTE format('GRANT pg_read_all_stats TO %I', owner_role);
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not granted pg_read_all_stats to %: sluice doctor will see only its own sessions', owner_role;
  END;
END $roles$;
