-- effect-tasks 0008: faster rows, and a submit that stays O(batch) on a big table.
--
-- 1. The functions that return tasks return `task_row`: `task_status` with its timestamps as
--    milliseconds since the epoch (double precision) instead of `timestamptz`, each column
--    written out (`task_epoch_ms` is inlined; a function building the whole row is not, and cost
--    0.1 ms a row). Drivers parse a
--    timestamp from its text with a regular expression (node-postgres: about 7 us a row, of 12
--    for a whole row); a number is parsed at once. Each is dropped and created again, the same
--    body but for the rows it returns.
-- 2. `task_insert` looks up the rows it inserted by primary key, and `task_claim` updates the rows
--    it picked by primary key: the planner hash-joined the whole table instead (a seq scan on
--    every submit and every claim: O(table), 10 ms of a 500-task claim on 20,000 rows).

CREATE TYPE task_row AS (
  id               text,
  seq              bigint,
  name             text,
  payload          jsonb,
  status           text,
  attempt          integer,
  progress         double precision,
  result           jsonb,
  error            jsonb,
  priority         integer,
  run_at           double precision,
  sort_key         double precision,
  created_at       double precision,
  started_at       double precision,
  finished_at      double precision,
  updated_at       double precision,
  locked_by        text,
  locked_until     double precision,
  idempotency_key  text,
  cancel_requested boolean
);

-- whole milliseconds since the epoch (truncated, as drivers parse a timestamptz), or NULL. In
-- doubles, which are exact here: the seconds times 1e6, rounded, are the stored microseconds
-- (numeric `extract` is exact too, but cost PostgreSQL 30 us a task)
-- (STABLE as date_part on a timestamptz is: declared IMMUTABLE it would not be inlined, and a
-- call per column cost more than the parsing it saves)
CREATE FUNCTION task_epoch_ms(p_at timestamptz) RETURNS double precision
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
  SELECT floor(round(date_part('epoch', p_at) * 1000000) / 1000)
$$;


DROP FUNCTION task_claim(text, text[], integer, bigint, timestamptz, bigint);
DROP FUNCTION task_set_progress(jsonb, timestamptz);
DROP FUNCTION task_settle(jsonb, timestamptz, bigint, boolean);
DROP FUNCTION task_get(text);
DROP FUNCTION task_list(text[], text, integer, text);

-- As in 0003, and no hash or merge join (see 2. above).
CREATE FUNCTION task_claim(
  p_owner    text,
  p_names    text[],
  p_limit    integer,
  p_lease_ms bigint,
  p_now      timestamptz DEFAULT NULL,
  p_aging_ms bigint      DEFAULT 60000
) RETURNS SETOF task_row
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
DECLARE
  v_now timestamptz := coalesce(p_now, now());
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  UPDATE task_status t
  SET status = 'pending', locked_by = NULL, locked_until = NULL, run_at = v_now,
      sort_key = v_now - t.priority * p_aging_ms * interval '1 millisecond', updated_at = v_now
  WHERE t.id IN (
    SELECT x.id FROM task_status x
    WHERE x.status = 'processing' AND x.locked_until <= v_now
    FOR UPDATE SKIP LOCKED
  );
  RETURN QUERY
  WITH picked AS (
    SELECT c.id FROM task_status c
    WHERE c.status = 'pending' AND c.run_at <= v_now AND c.name = ANY (p_names)
    ORDER BY c.sort_key, c.seq
    LIMIT p_limit
    -- rows another claimer is taking are skipped, not waited for
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE task_status t
    SET status = 'processing', attempt = t.attempt + 1, started_at = v_now, updated_at = v_now,
        locked_by = p_owner, locked_until = v_now + p_lease_ms * interval '1 millisecond'
    FROM picked
    WHERE t.id = picked.id
    RETURNING t.*
  )
  SELECT claimed.id, claimed.seq, claimed.name, claimed.payload, claimed.status, claimed.attempt, claimed.progress, claimed.result, claimed.error,
         claimed.priority, task_epoch_ms(claimed.run_at), task_epoch_ms(claimed.sort_key), task_epoch_ms(claimed.created_at),
         task_epoch_ms(claimed.started_at), task_epoch_ms(claimed.finished_at), task_epoch_ms(claimed.updated_at),
         claimed.locked_by, task_epoch_ms(claimed.locked_until), claimed.idempotency_key, claimed.cancel_requested
  FROM claimed ORDER BY claimed.sort_key, claimed.seq;
END
$$;

-- As in 0003.
CREATE FUNCTION task_set_progress(
  p_updates jsonb,
  p_now     timestamptz DEFAULT NULL
) RETURNS SETOF task_row
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
DECLARE
  v_now timestamptz := coalesce(p_now, now());
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
  WITH updated AS (
  UPDATE task_status t
  SET progress = u.progress, updated_at = v_now
  FROM (
    SELECT e.value ->> 'id' AS id, e.value ->> 'owner' AS owner, (e.value ->> 'progress')::double precision AS progress
    FROM jsonb_array_elements(p_updates) AS e(value)
  ) u
  WHERE t.id = u.id AND t.locked_by = u.owner AND t.progress <> u.progress
  RETURNING t.*
  )
  SELECT updated.id, updated.seq, updated.name, updated.payload, updated.status, updated.attempt, updated.progress, updated.result, updated.error,
         updated.priority, task_epoch_ms(updated.run_at), task_epoch_ms(updated.sort_key), task_epoch_ms(updated.created_at),
         task_epoch_ms(updated.started_at), task_epoch_ms(updated.finished_at), task_epoch_ms(updated.updated_at),
         updated.locked_by, task_epoch_ms(updated.locked_until), updated.idempotency_key, updated.cancel_requested
  FROM updated;
END
$$;

-- As in 0003.
CREATE FUNCTION task_settle(
  p_settlements jsonb,
  p_now         timestamptz DEFAULT NULL,
  p_aging_ms    bigint      DEFAULT 60000,
  p_synchronous boolean     DEFAULT true
) RETURNS SETOF task_row
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
DECLARE
  v_now     timestamptz := coalesce(p_now, now());
  v_bad     text;
  v_pending boolean;
BEGIN
  IF NOT p_synchronous THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  SELECT e.value ->> 'outcome' INTO v_bad
  FROM jsonb_array_elements(p_settlements) AS e(value)
  WHERE NOT coalesce(e.value ->> 'outcome' IN ('completed', 'failed', 'cancelled', 'retry', 'released', 'returned'), false)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'task_settle: unknown outcome %', coalesce(v_bad, 'null');
  END IF;
  RETURN QUERY
  WITH s AS (
    SELECT e.value ->> 'id' AS id,
           e.value ->> 'owner' AS owner,
           e.value ->> 'outcome' AS outcome,
           e.value -> 'result' AS result,
           e.value -> 'error' AS error,
           coalesce((e.value ->> 'run_at')::timestamptz, v_now) AS run_at,
           (e.value ->> 'progress')::double precision AS progress
    FROM jsonb_array_elements(p_settlements) AS e(value)
  ), settled AS (
    UPDATE task_status t
    SET status = CASE WHEN s.outcome IN ('retry', 'released', 'returned') THEN 'pending' ELSE s.outcome END,
        attempt = CASE WHEN s.outcome = 'returned' THEN greatest(t.attempt - 1, 0) ELSE t.attempt END,
        progress = CASE WHEN s.outcome = 'completed' THEN 100 ELSE coalesce(s.progress, t.progress) END,
        result = CASE WHEN s.outcome = 'completed' THEN s.result ELSE t.result END,
        error = CASE s.outcome WHEN 'completed' THEN NULL WHEN 'failed' THEN s.error WHEN 'retry' THEN s.error
                ELSE t.error END,
        finished_at = CASE WHEN s.outcome IN ('completed', 'failed', 'cancelled') THEN v_now ELSE t.finished_at END,
        run_at = CASE s.outcome WHEN 'retry' THEN s.run_at WHEN 'released' THEN v_now ELSE t.run_at END,
        sort_key = CASE s.outcome
                     WHEN 'retry' THEN s.run_at - t.priority * p_aging_ms * interval '1 millisecond'
                     WHEN 'released' THEN v_now - t.priority * p_aging_ms * interval '1 millisecond'
                     ELSE t.sort_key END,
        updated_at = v_now,
        locked_by = NULL,
        locked_until = NULL
    FROM s
    WHERE t.id = s.id AND t.locked_by = s.owner
    RETURNING t.*
  )
  SELECT settled.id, settled.seq, settled.name, settled.payload, settled.status, settled.attempt, settled.progress, settled.result, settled.error,
         settled.priority, task_epoch_ms(settled.run_at), task_epoch_ms(settled.sort_key), task_epoch_ms(settled.created_at),
         task_epoch_ms(settled.started_at), task_epoch_ms(settled.finished_at), task_epoch_ms(settled.updated_at),
         settled.locked_by, task_epoch_ms(settled.locked_until), settled.idempotency_key, settled.cancel_requested
  FROM settled;
  SELECT EXISTS (
    SELECT 1 FROM jsonb_array_elements(p_settlements) AS e(value)
    WHERE e.value ->> 'outcome' IN ('retry', 'released', 'returned')
  ) INTO v_pending;
  IF v_pending THEN
    PERFORM pg_notify(current_schema() || '.task_status', 'retry');
  END IF;
END
$$;

-- As in 0004.
CREATE FUNCTION task_get(
  p_id text
) RETURNS SETOF task_row
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT t.id, t.seq, t.name, t.payload, t.status, t.attempt, t.progress, t.result, t.error,
         t.priority, task_epoch_ms(t.run_at), task_epoch_ms(t.sort_key), task_epoch_ms(t.created_at),
         task_epoch_ms(t.started_at), task_epoch_ms(t.finished_at), task_epoch_ms(t.updated_at),
         t.locked_by, task_epoch_ms(t.locked_until), t.idempotency_key, t.cancel_requested
  FROM task_status t WHERE t.id = p_id
$$;

-- As in 0004.
CREATE FUNCTION task_list(
  p_statuses text[]  DEFAULT NULL,
  p_name     text    DEFAULT NULL,
  p_limit    integer DEFAULT NULL,
  p_cursor   text    DEFAULT NULL
) RETURNS SETOF task_row
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT t.id, t.seq, t.name, t.payload, t.status, t.attempt, t.progress, t.result, t.error,
         t.priority, task_epoch_ms(t.run_at), task_epoch_ms(t.sort_key), task_epoch_ms(t.created_at),
         task_epoch_ms(t.started_at), task_epoch_ms(t.finished_at), task_epoch_ms(t.updated_at),
         t.locked_by, task_epoch_ms(t.locked_until), t.idempotency_key, t.cancel_requested
  FROM task_status t
  WHERE (p_statuses IS NULL OR t.status = ANY (p_statuses))
    AND (p_name IS NULL OR t.name = p_name)
    AND (p_cursor IS NULL OR t.seq < (SELECT c.seq FROM task_status c WHERE c.id = p_cursor))
  ORDER BY t.seq DESC
  LIMIT p_limit
$$;

ALTER FUNCTION task_insert(jsonb, timestamptz, bigint)
  SET enable_hashjoin = off
  SET enable_mergejoin = off
  SET jit = off;

-- the privileges of 0007, for the functions created again here
REVOKE ALL ON FUNCTION
  task_claim(text, text[], integer, bigint, timestamptz, bigint),
  task_set_progress(jsonb, timestamptz),
  task_settle(jsonb, timestamptz, bigint, boolean),
  task_get(text),
  task_list(text[], text, integer, text),
  task_epoch_ms(timestamptz)
FROM PUBLIC;

DO $$
DECLARE
  v_functions text := 'task_claim(text, text[], integer, bigint, timestamptz, bigint), '
    || 'task_set_progress(jsonb, timestamptz), task_settle(jsonb, timestamptz, bigint, boolean), '
    || 'task_get(text), task_list(text[], text, integer, text), task_epoch_ms(timestamptz)';
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
  END IF;
END
$$;
