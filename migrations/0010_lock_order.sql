-- effect-tasks 0010: one lock order.
--
-- `task_heartbeat` locked its rows in the order of the primary-key scan, `task_settle` and
-- `task_set_progress` in the order of their arguments: a heartbeat and a settlement (or a progress
-- write) of overlapping tasks could each hold a row the other waited for, and one of them failed
-- with a deadlock (SQLSTATE 40P01; seen in fault runs). Every function that locks several rows
-- now locks them first, by id (`ORDER BY id FOR UPDATE`: rows are locked after the sort), then
-- updates them. Claims skip locked rows and single-row functions hold one lock: neither can be
-- part of a cycle.

-- As in 0003, its rows locked in id order.
CREATE OR REPLACE FUNCTION task_heartbeat(
  p_owner    text,
  p_ids      text[],
  p_lease_ms bigint,
  p_now      timestamptz DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_now    timestamptz := coalesce(p_now, now());
  v_result jsonb;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  WITH held AS (
    SELECT t.id, t.cancel_requested FROM task_status t
    WHERE t.id = ANY (p_ids) AND t.locked_by = p_owner
    -- locked in id order, as task_settle and task_set_progress lock (see the top)
    ORDER BY t.id
    FOR UPDATE
  ), extended AS (
    UPDATE task_status t
    SET locked_until = v_now + p_lease_ms * interval '1 millisecond'
    FROM held
    WHERE t.id = held.id AND NOT held.cancel_requested
  )
  SELECT jsonb_build_object(
    'cancelled', coalesce((SELECT jsonb_agg(h.id) FROM held h WHERE h.cancel_requested), '[]'::jsonb),
    'lost', coalesce((SELECT jsonb_agg(i.id) FROM unnest(p_ids) AS i(id)
                      WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.id = i.id)), '[]'::jsonb)
  ) INTO v_result;
  RETURN v_result;
END
$$;

-- As in 0008, its rows locked in id order first.
CREATE OR REPLACE FUNCTION task_set_progress(
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
  -- rows locked in one order (by id) by every function that locks several: see the top
  PERFORM 1 FROM task_status t
  WHERE t.id IN (SELECT e.value ->> 'id' FROM jsonb_array_elements(p_updates) AS e(value))
  ORDER BY t.id FOR UPDATE;
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

-- As in 0009, its rows locked in id order first.
CREATE OR REPLACE FUNCTION task_settle(
  p_owners      text[],
  p_ids         text[],
  p_outcomes    text[],
  p_values      jsonb,
  p_run_ats     double precision[],
  p_progress    double precision[],
  p_now         timestamptz DEFAULT NULL,
  p_aging_ms    bigint      DEFAULT 60000,
  p_synchronous boolean     DEFAULT true
) RETURNS TABLE (id text, status text, progress double precision, run_at double precision, at double precision)
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
DECLARE
  v_now timestamptz := coalesce(p_now, now());
  v_n   integer := coalesce(cardinality(p_ids), 0);
  v_bad text;
BEGIN
  IF coalesce(cardinality(p_owners), 0) <> v_n OR coalesce(cardinality(p_outcomes), 0) <> v_n
     OR coalesce(jsonb_array_length(p_values), 0) <> v_n
     OR coalesce(cardinality(p_run_ats), 0) <> v_n OR coalesce(cardinality(p_progress), 0) <> v_n THEN
    RAISE EXCEPTION 'task_settle: the arrays differ in length';
  END IF;
  SELECT o INTO v_bad FROM unnest(p_outcomes) AS o
  WHERE NOT coalesce(o IN ('completed', 'failed', 'cancelled', 'retry', 'released', 'returned'), false)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'task_settle: unknown outcome %', coalesce(v_bad, 'null');
  END IF;
  IF NOT p_synchronous THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  -- rows locked in one order (by id) by every function that locks several: see the top
  PERFORM 1 FROM task_status t WHERE t.id = ANY (p_ids) ORDER BY t.id FOR UPDATE;
  RETURN QUERY
  WITH s AS (
    SELECT u.id, u.owner, u.outcome, p_values -> (u.i - 1)::integer AS value,
           coalesce(to_timestamp(u.run_at / 1000), v_now) AS run_at, u.progress
    FROM unnest(p_ids, p_owners, p_outcomes, p_run_ats, p_progress)
         WITH ORDINALITY AS u(id, owner, outcome, run_at, progress, i)
  ), settled AS (
    UPDATE task_status t
    SET status = CASE WHEN s.outcome IN ('retry', 'released', 'returned') THEN 'pending' ELSE s.outcome END,
        attempt = CASE WHEN s.outcome = 'returned' THEN greatest(t.attempt - 1, 0) ELSE t.attempt END,
        progress = CASE WHEN s.outcome = 'completed' THEN 100 ELSE coalesce(s.progress, t.progress) END,
        result = CASE WHEN s.outcome = 'completed' THEN s.value ELSE t.result END,
        error = CASE s.outcome WHEN 'completed' THEN NULL WHEN 'failed' THEN s.value WHEN 'retry' THEN s.value
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
    RETURNING t.id, t.status, t.progress, t.run_at
  )
  SELECT settled.id, settled.status, settled.progress, task_epoch_ms(settled.run_at), task_epoch_ms(v_now)
  FROM settled;
  IF 'retry' = ANY (p_outcomes) OR 'released' = ANY (p_outcomes) OR 'returned' = ANY (p_outcomes) THEN
    PERFORM pg_notify(current_schema() || '.task_status', 'retry');
  END IF;
END
$$;
