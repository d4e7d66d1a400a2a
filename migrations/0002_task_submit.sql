-- effect-tasks 0002: the producer's side of the lifecycle: insert, cancel, requeue.
--
-- Every function takes `p_now` (NULL: the database's `now()`) so that one clock rules a queue,
-- and `p_aging_ms`, the priority aging of the claim order (`sort_key = run_at - priority * aging`).
-- New runnable work is announced on the channel `<schema>.task_status` (LISTEN/NOTIFY), which
-- wakes idle engines at once; they also poll, since LISTEN does not pass transaction poolers.

-- Inserts pending tasks, given as a JSON array of
-- { id, name, payload, priority, run_at, idempotency_key }. Returns one row per input, in order:
-- the task's id, whether it was inserted, and its created_at. A task whose idempotency key exists
-- already is not inserted; its row gives the existing task's id. An id that exists already is a
-- retried call that went through before: it counts as inserted.
CREATE FUNCTION task_insert(
  p_tasks    jsonb,
  p_now      timestamptz DEFAULT NULL,
  p_aging_ms bigint      DEFAULT 60000
) RETURNS TABLE (id text, inserted boolean, created_at timestamptz)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_now   timestamptz := coalesce(p_now, now());
  v_count integer;
BEGIN
  INSERT INTO task_status (id, name, payload, priority, run_at, sort_key, created_at, updated_at, idempotency_key)
  SELECT t.id, t.name, t.payload, t.priority, t.run_at,
         t.run_at - t.priority * p_aging_ms * interval '1 millisecond',
         v_now, v_now, t.idempotency_key
  FROM (
    SELECT e.ord,
           e.value ->> 'id' AS id,
           e.value ->> 'name' AS name,
           e.value -> 'payload' AS payload,
           coalesce((e.value ->> 'priority')::integer, 0) AS priority,
           coalesce((e.value ->> 'run_at')::timestamptz, v_now) AS run_at,
           e.value ->> 'idempotency_key' AS idempotency_key
    FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(value, ord)
  ) t
  ORDER BY t.ord
  -- races on the idempotency key are settled by its unique index
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count > 0 THEN
    PERFORM pg_notify(current_schema() || '.task_status', 'insert');
  END IF;
  -- a new statement, so a conflicting row committed meanwhile by another transaction is seen
  RETURN QUERY
  SELECT coalesce(own.id, dup.id), own.id IS NOT NULL, coalesce(own.created_at, dup.created_at)
  FROM jsonb_array_elements(p_tasks) WITH ORDINALITY AS e(value, ord)
  LEFT JOIN task_status own ON own.id = e.value ->> 'id'
  LEFT JOIN task_status dup ON own.id IS NULL AND dup.idempotency_key = e.value ->> 'idempotency_key'
  ORDER BY e.ord;
END
$$;

-- Cancels a task whoever holds it: a pending one at once ('cancelled'); a processing one gets
-- `cancel_requested`, which its owner's next heartbeat reports ('requested'); a finished one is
-- left alone ('finished'); 'notFound' for an unknown id.
CREATE FUNCTION task_cancel(
  p_id  text,
  p_now timestamptz DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_now    timestamptz := coalesce(p_now, now());
  v_status text;
BEGIN
  -- the row lock waits for a claim or settle in flight, so the status read is the latest
  SELECT t.status INTO v_status FROM task_status t WHERE t.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'notFound';
  END IF;
  IF v_status = 'pending' THEN
    UPDATE task_status t SET status = 'cancelled', finished_at = v_now, updated_at = v_now WHERE t.id = p_id;
    RETURN 'cancelled';
  ELSIF v_status = 'processing' THEN
    UPDATE task_status t SET cancel_requested = true WHERE t.id = p_id;
    RETURN 'requested';
  END IF;
  RETURN 'finished';
END
$$;

-- Puts a failed or cancelled task back to pending, due now, with its attempts, progress, result
-- and error cleared ('requeued'); 'notFinished' for any other status, 'notFound' for an unknown id.
CREATE FUNCTION task_requeue(
  p_id       text,
  p_now      timestamptz DEFAULT NULL,
  p_aging_ms bigint      DEFAULT 60000
) RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_now    timestamptz := coalesce(p_now, now());
  v_status text;
BEGIN
  SELECT t.status INTO v_status FROM task_status t WHERE t.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'notFound';
  END IF;
  IF v_status NOT IN ('failed', 'cancelled') THEN
    RETURN 'notFinished';
  END IF;
  UPDATE task_status t
  SET status = 'pending', attempt = 0, progress = 0, result = NULL, error = NULL,
      run_at = v_now, sort_key = v_now - t.priority * p_aging_ms * interval '1 millisecond',
      started_at = NULL, finished_at = NULL, updated_at = v_now,
      locked_by = NULL, locked_until = NULL, cancel_requested = false
  WHERE t.id = p_id;
  PERFORM pg_notify(current_schema() || '.task_status', 'requeue');
  RETURN 'requeued';
END
$$;
