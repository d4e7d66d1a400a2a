-- effect-tasks 0003: the worker's side of the lifecycle: claim, heartbeat, progress, settle.
--
-- A claim takes a lease: `locked_by` (the engine instance) and `locked_until`. The owner extends
-- it with heartbeats while the attempt runs and ends it by settling. A lease that runs out makes
-- the task claimable by anyone again (at-least-once delivery).
--
-- `locked_by` is set exactly while a task is processing (every function keeps it so), and "the
-- owner holds the task" is tested as `locked_by = owner` alone: a test of `status` as well would
-- let the planner read every processing row through task_status_lease_idx instead of finding
-- the few rows at hand by primary key.
--
-- Claims, heartbeats and progress commit asynchronously (`synchronous_commit = off`): losing
-- one in a database crash only shortens a lease or forgets that an attempt started, so the task
-- runs again, as at-least-once delivery allows. Settlements commit synchronously unless the
-- caller asks otherwise (`p_synchronous => false`, with the same consequence for the last
-- few hundred milliseconds of settlements before a database crash).

-- Claims up to `p_limit` runnable tasks named in `p_names` for `p_owner`, with a lease of
-- `p_lease_ms`: pending and due tasks by the aged priority key, then submission order. Tasks
-- whose lease expired go back to pending first (due now), so they are claimed again. Each claimed
-- task's `attempt` is incremented. Returns the claimed records, in claim order.
--
-- The claim must walk task_status_claim_idx in order and stop after `p_limit` rows. A queue's
-- statistics are always stale, and the planner, misled, may sort every due row instead (one
-- claim then costs O(backlog)): sorting is switched off for this function. (So is JIT, which the
-- resulting cost estimates would otherwise trigger at every call.)
CREATE FUNCTION task_claim(
  p_owner    text,
  p_names    text[],
  p_limit    integer,
  p_lease_ms bigint,
  p_now      timestamptz DEFAULT NULL,
  p_aging_ms bigint      DEFAULT 60000
) RETURNS SETOF task_status
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_sort = off
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
  SELECT * FROM claimed ORDER BY claimed.sort_key, claimed.seq;
END
$$;

-- Extends the leases of `p_owner`'s processing tasks among `p_ids` to now + `p_lease_ms`.
-- Returns { "cancelled": [ids], "lost": [ids] }: tasks whose cancel was requested (their lease is
-- not extended: the owner stops them and settles them as cancelled) and tasks the owner no longer
-- holds (another instance may run them: the owner stops without settling).
CREATE FUNCTION task_heartbeat(
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

-- Records progress (0..100) of processing tasks, given as a JSON array of { id, owner, progress };
-- only the owner's, and only changes. Returns the changed records. (As in task_settle, each
-- update finds its row by primary key: hash and merge joins would read every processing row.)
CREATE FUNCTION task_set_progress(
  p_updates jsonb,
  p_now     timestamptz DEFAULT NULL
) RETURNS SETOF task_status
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
  UPDATE task_status t
  SET progress = u.progress, updated_at = v_now
  FROM (
    SELECT e.value ->> 'id' AS id, e.value ->> 'owner' AS owner, (e.value ->> 'progress')::double precision AS progress
    FROM jsonb_array_elements(p_updates) AS e(value)
  ) u
  WHERE t.id = u.id AND t.locked_by = u.owner AND t.progress <> u.progress
  RETURNING t.*;
END
$$;

-- Settles attempts, given as a JSON array of
-- { id, owner, outcome, result?, error?, run_at?, progress? }, each applied only if `owner` still
-- holds the task. Outcomes:
--   completed: terminal, with `result`; progress 100, error cleared;
--   failed:    terminal, with `error`;
--   cancelled: terminal (the attempt was interrupted by a cancel);
--   retry:     pending again at `run_at` (the backoff), with `error`;
--   released:  pending again now (interrupted by a shutdown);
--   returned:  pending again in its old place, the claim undone (attempt - 1): a task claimed
--              but never started (its claimer stopped waiting, or a claim-ahead went unused).
-- `progress`, when given, is the attempt's last reported progress (throttled writes land here).
-- Returns the settled records; a task not held by its owner is absent.
--
-- Each settlement finds its row by primary key (a nested loop over the batch): a hash or merge
-- join would read every processing row of every instance, so they are switched off here.
CREATE FUNCTION task_settle(
  p_settlements jsonb,
  p_now         timestamptz DEFAULT NULL,
  p_aging_ms    bigint      DEFAULT 60000,
  p_synchronous boolean     DEFAULT true
) RETURNS SETOF task_status
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
  SELECT * FROM settled;
  SELECT EXISTS (
    SELECT 1 FROM jsonb_array_elements(p_settlements) AS e(value)
    WHERE e.value ->> 'outcome' IN ('retry', 'released', 'returned')
  ) INTO v_pending;
  IF v_pending THEN
    PERFORM pg_notify(current_schema() || '.task_status', 'retry');
  END IF;
END
$$;
