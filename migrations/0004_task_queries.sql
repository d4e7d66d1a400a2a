-- effect-tasks 0004: reading tasks, the engine's scheduling questions, and cleanup.

-- The task with this id: zero or one row.
CREATE FUNCTION task_get(
  p_id text
) RETURNS SETOF task_status
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT * FROM task_status t WHERE t.id = p_id
$$;

-- Tasks newest first, filtered by status (any of `p_statuses`) and name when given, at most
-- `p_limit` (all when NULL), starting after the task `p_cursor` (the last of the previous page).
CREATE FUNCTION task_list(
  p_statuses text[]  DEFAULT NULL,
  p_name     text    DEFAULT NULL,
  p_limit    integer DEFAULT NULL,
  p_cursor   text    DEFAULT NULL
) RETURNS SETOF task_status
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT * FROM task_status t
  WHERE (p_statuses IS NULL OR t.status = ANY (p_statuses))
    AND (p_name IS NULL OR t.name = p_name)
    AND (p_cursor IS NULL OR t.seq < (SELECT c.seq FROM task_status c WHERE c.id = p_cursor))
  ORDER BY t.seq DESC
  LIMIT p_limit
$$;

-- When the engine should look for work next: the earliest run_at of pending tasks named in
-- `p_names` (due or not), or the earliest lease expiry, whichever comes first; NULL if neither.
CREATE FUNCTION task_next_run_at(
  p_names text[]
) RETURNS timestamptz
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT least(
    (SELECT min(t.run_at) FROM task_status t WHERE t.status = 'pending' AND t.name = ANY (p_names)),
    (SELECT min(t.locked_until) FROM task_status t WHERE t.status = 'processing')
  )
$$;

-- How many tasks are pending (the backlog an engine's `maxQueued` bounds).
CREATE FUNCTION task_pending_count() RETURNS integer
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT count(*)::integer FROM task_status t WHERE t.status = 'pending'
$$;

-- Deletes up to `p_limit` tasks in `p_status` that finished before `p_before`, oldest first;
-- returns how many. Cleanup calls it in bounded batches until a batch comes back short.
CREATE FUNCTION task_delete_finished(
  p_status text,
  p_before timestamptz,
  p_limit  integer
) RETURNS integer
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
  WITH doomed AS (
    SELECT t.id FROM task_status t
    WHERE t.status = p_status AND t.finished_at < p_before
    ORDER BY t.finished_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), deleted AS (
    DELETE FROM task_status t USING doomed WHERE t.id = doomed.id RETURNING 1
  )
  SELECT count(*)::integer FROM deleted
$$;
