-- effect-tasks 0009: claims that write no index entries, and lean answers.
--
-- 1. HOT claims. A claim used to change `status` and `locked_until`, which indexes named (in
--    their columns or their `WHERE`), so each claimed row got a new entry in every index of the
--    table: half of PostgreSQL's CPU in a busy queue went to index insertions. Now no index
--    names `status`, `locked_until`, `locked_by`, `attempt` or `started_at`: a claim (and a
--    heartbeat, a progress write, a cancel request) is a heap-only (HOT) update, a new version
--    of the row in its own page and no index entry, when the page has room for it. To leave
--    that room, new rows fill 40% of a page (`fillfactor = 40`; at 50 a claim of every row of a
--    page did not fit, and one claim in six wrote four index entries): the table takes about
--    2.5 times the space of a packed one. A row leaves the claim index when it finishes
--    (`finished_at` is set exactly for completed, failed and cancelled tasks).
-- 2. An expired lease is no longer put back to pending by a separate UPDATE in every claim (it
--    read task_status_lease_idx, now gone): a claim takes a processing task whose lease ran out
--    as it takes a due pending one, in its old place in the queue. Until some instance claims it
--    the task shows as processing, and its owner's heartbeat may still extend the lease. The
--    claim walks past the unexpired processing tasks at the head of the queue (at most the
--    tasks running on all instances, and those claimed ahead).
-- 3. `task_claim` returns only what a claim does not already tell (a `task_claimed` row); the
--    caller knows the status, owner, start and lease (`at`: the database's time of the claim).
-- 4. `task_settle` takes its settlements as arrays, read once, instead of a JSON array of
--    objects read three times, and answers (id, status, progress, run_at, at) for the settled
--    rows, not whole rows: the caller holds the rest since it claimed them.
-- 5. Cleanup finds finished tasks by `finished_at` alone and checks the status on the row.

DROP INDEX task_status_claim_idx;
DROP INDEX task_status_run_at_idx;
DROP INDEX task_status_lease_idx;
DROP INDEX task_status_finished_idx;

-- claims: unfinished tasks in claim order (pending ones, and processing ones whose lease may run out)
CREATE INDEX task_status_claim_idx ON task_status (sort_key, seq) WHERE finished_at IS NULL;

-- the next due time (the engine's timer): unfinished tasks by run_at
CREATE INDEX task_status_run_at_idx ON task_status (run_at) WHERE finished_at IS NULL;

-- cleanup: finished tasks by age
CREATE INDEX task_status_finished_idx ON task_status (finished_at) WHERE finished_at IS NOT NULL;

-- room in each page for the claimed version of its rows (applies to rows written from now on)
ALTER TABLE task_status SET (fillfactor = 40);

DROP FUNCTION task_claim(text, text[], integer, bigint, timestamptz, bigint);
DROP FUNCTION task_settle(jsonb, timestamptz, bigint, boolean);
DROP FUNCTION task_next_run_at(text[]);
DROP FUNCTION task_pending_count();
DROP FUNCTION task_delete_finished(text, timestamptz, integer);

-- A claimed task: what the claim does not already tell its caller. Times are epoch milliseconds
-- (see task_row in 0008); `at` is the claim's time: the task's `started_at` and `updated_at`.
CREATE TYPE task_claimed AS (
  id              text,
  name            text,
  payload         jsonb,
  attempt         integer,
  progress        double precision,
  error           jsonb,
  priority        integer,
  run_at          double precision,
  created_at      double precision,
  idempotency_key text,
  at              double precision,
  locked_until    double precision
);

-- Claims up to `p_limit` runnable tasks named in `p_names` for `p_owner`, with a lease of
-- `p_lease_ms`: pending tasks that are due and processing tasks whose lease has expired, by the
-- aged priority key, then submission order. Each claimed task's `attempt` is incremented (a
-- reclaimed one counts the attempt that was lost). Returns them in claim order.
--
-- Sorting, hash and merge joins and JIT are off as in 0003 and 0008: the claim walks
-- task_status_claim_idx in order and stops after `p_limit` rows. It updates the rows it locked by
-- their `ctid` (a TID scan), not by primary key (7.3 -> 5.6 us of CPU a claimed task at batches
-- of 500): a locked row cannot move, and `FOR UPDATE` answers the `ctid` of the version it locked.
-- A row updated by another transaction since this statement's snapshot (a concurrent `released`
-- settlement) is not visible to the TID scan: it is left unclaimed this time, as if skipped.
CREATE FUNCTION task_claim(
  p_owner    text,
  p_names    text[],
  p_limit    integer,
  p_lease_ms bigint,
  p_now      timestamptz DEFAULT NULL,
  p_aging_ms bigint      DEFAULT 60000
) RETURNS SETOF task_claimed
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
  RETURN QUERY
  WITH picked AS (
    SELECT c.ctid AS tid FROM task_status c
    WHERE c.finished_at IS NULL AND c.name = ANY (p_names)
      AND CASE c.status
            WHEN 'pending' THEN c.run_at <= v_now
            WHEN 'processing' THEN c.locked_until <= v_now
            ELSE false
          END
    ORDER BY c.sort_key, c.seq
    LIMIT p_limit
    -- rows another claimer is taking are skipped, not waited for
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE task_status t
    SET status = 'processing', attempt = t.attempt + 1, started_at = v_now, updated_at = v_now,
        locked_by = p_owner, locked_until = v_now + p_lease_ms * interval '1 millisecond'
    WHERE t.ctid = ANY (ARRAY(SELECT picked.tid FROM picked))
    RETURNING t.*
  )
  SELECT claimed.id, claimed.name, claimed.payload, claimed.attempt, claimed.progress, claimed.error,
         claimed.priority, task_epoch_ms(claimed.run_at), task_epoch_ms(claimed.created_at),
         claimed.idempotency_key, task_epoch_ms(v_now), task_epoch_ms(claimed.locked_until)
  FROM claimed ORDER BY claimed.sort_key, claimed.seq;
END
$$;

-- Settles tasks, each by its lease's owner: element i of every array is one settlement, whose
-- outcome is one of
-- - 'completed' (`p_values[i]` is the result), 'failed' (`p_values[i]` is the error),
--   'cancelled': final;
-- - 'retry': pending again, due at `p_run_ats[i]` (epoch milliseconds), `p_values[i]` the error;
-- - 'released': pending again, due now, in its place by priority (an instance shutting down);
-- - 'returned': the claim undone, for a task claimed ahead that never started: pending again,
--   its attempt uncounted, in its old place.
-- `p_values` is a JSON array (one element per settlement, null when none); `p_progress[i]`, when
-- not null, is the attempt's last progress (kept unless completed, which sets 100). A row not
-- held by its owner is left alone (its lease was lost). Returns (id, status, progress, run_at,
-- at) of each settled row, `at` being the settlement's time (the row's `updated_at`, and its
-- `finished_at` when final). A task pending again is announced on the channel.
CREATE FUNCTION task_settle(
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

-- When the engine should look for work next: the earliest run_at of pending tasks named in
-- `p_names` (due or not), or the earliest lease expiry of such tasks, whichever comes first;
-- NULL if neither. It walks the unfinished tasks of these names by run_at up to the first pending
-- one: every processing task before it has a lease to consider, and none after it can expire
-- earlier (a lease ends after the claim, which came after the task's run_at).
CREATE FUNCTION task_next_run_at(
  p_names text[]
) RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_next timestamptz;
  r      record;
BEGIN
  FOR r IN
    SELECT t.status, t.run_at, t.locked_until FROM task_status t
    WHERE t.finished_at IS NULL AND t.name = ANY (p_names)
    ORDER BY t.run_at
  LOOP
    IF r.status = 'pending' THEN
      RETURN least(v_next, r.run_at);
    END IF;
    v_next := least(v_next, r.locked_until);
  END LOOP;
  RETURN v_next;
END
$$;

-- How many tasks are pending (the backlog an engine's `maxQueued` bounds).
CREATE FUNCTION task_pending_count() RETURNS integer
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT count(*)::integer FROM task_status t WHERE t.finished_at IS NULL AND t.status = 'pending'
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
    WHERE t.finished_at < p_before AND t.status = p_status
    ORDER BY t.finished_at
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), deleted AS (
    DELETE FROM task_status t USING doomed WHERE t.id = doomed.id RETURNING 1
  )
  SELECT count(*)::integer FROM deleted
$$;

-- the privileges of 0007, for the functions created again here
REVOKE ALL ON FUNCTION
  task_claim(text, text[], integer, bigint, timestamptz, bigint),
  task_settle(text[], text[], text[], jsonb, double precision[], double precision[], timestamptz, bigint, boolean),
  task_next_run_at(text[]),
  task_pending_count(),
  task_delete_finished(text, timestamptz, integer)
FROM PUBLIC;

DO $$
DECLARE
  v_functions text := 'task_claim(text, text[], integer, bigint, timestamptz, bigint), '
    || 'task_settle(text[], text[], text[], jsonb, double precision[], double precision[], timestamptz, bigint, boolean), '
    || 'task_next_run_at(text[]), task_pending_count(), task_delete_finished(text, timestamptz, integer)';
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
  END IF;
END
$$;
