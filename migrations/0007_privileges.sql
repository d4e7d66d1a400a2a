-- effect-tasks 0007: who may use the queue. Only the owner (the role that ran the migrations) and
-- roles it grants to: the functions are not executable by PUBLIC. On Supabase, the API roles
-- `anon` and `authenticated` get nothing (PostgREST must not expose the queue to browsers), and
-- `service_role` (Edge Functions with the service key) gets what `TaskStore.layerSupabase` needs.
-- Elsewhere those roles do not exist and the block below does nothing.

REVOKE ALL ON FUNCTION
  task_insert(jsonb, timestamptz, bigint),
  task_cancel(text, timestamptz),
  task_requeue(text, timestamptz, bigint),
  task_claim(text, text[], integer, bigint, timestamptz, bigint),
  task_heartbeat(text, text[], bigint, timestamptz),
  task_set_progress(jsonb, timestamptz),
  task_settle(jsonb, timestamptz, bigint, boolean),
  task_get(text),
  task_list(text[], text, integer, text),
  task_next_run_at(text[]),
  task_pending_count(),
  task_delete_finished(text, timestamptz, integer)
FROM PUBLIC;

DO $$
DECLARE
  v_role text;
  v_functions text := 'task_insert(jsonb, timestamptz, bigint), task_cancel(text, timestamptz), '
    || 'task_requeue(text, timestamptz, bigint), task_claim(text, text[], integer, bigint, timestamptz, bigint), '
    || 'task_heartbeat(text, text[], bigint, timestamptz), task_set_progress(jsonb, timestamptz), '
    || 'task_settle(jsonb, timestamptz, bigint, boolean), task_get(text), task_list(text[], text, integer, text), '
    || 'task_next_run_at(text[]), task_pending_count(), task_delete_finished(text, timestamptz, integer)';
BEGIN
  FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
      EXECUTE format('REVOKE ALL ON TABLE task_status, error_logs, task_metrics FROM %I', v_role);
      EXECUTE format('REVOKE ALL ON SEQUENCE task_status_seq_seq, error_logs_id_seq FROM %I', v_role);
      EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
    END IF;
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE task_status, error_logs, task_metrics TO service_role;
    GRANT USAGE ON SEQUENCE task_status_seq_seq, error_logs_id_seq TO service_role;
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
  END IF;
END
$$;
