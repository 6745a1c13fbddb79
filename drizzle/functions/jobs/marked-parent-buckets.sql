-- The parent id buckets (hashint8(id) & 63) that other transactions of this
-- database have marked while they enqueue children of parents they did not
-- write (jobs/enqueue-many.sql, dead-jobs/replay.sql): a shared advisory lock
-- under class 1936486756 per bucket, held until they end. sluice.dead_purge
-- and sluice.prune_history leave a parent of a marked bucket for a later
-- round, so that the orphan sweep finds how it ended.
--
-- Call it inside the DELETE that removes the parents, so that the marks are
-- read after that statement's snapshot: read in a statement before it, a
-- producer could mark a parent, find it live and insert its child waiting,
-- the parent then die, and the DELETE (a later snapshot) remove it unmarked,
-- before the child's commit made it visible to the follow-up; the orphan
-- sweep then took the parent, in no table, for completed, and ran the child.
--
-- Lease: none. Locks: none (reads pg_locks).
CREATE OR REPLACE FUNCTION sluice.marked_parent_buckets()
RETURNS SETOF integer LANGUAGE sql VOLATILE AS $$
  SELECT l.objid::text::integer FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.classid = 1936486756 AND l.objsubid = 2 AND l.pid <> pg_backend_pid()
    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
$$;
