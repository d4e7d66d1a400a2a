-- effect-tasks 0011: the change feed across instances.
--
-- A store's `subscribe` saw only the changes that store made: a producer never saw its workers'
-- progress and settlements (nor did its dashboard, SSE streams and `watch`). Now every statement
-- that inserts or updates tasks announces them on the channel `<schema>.task_changes`, while some
-- store has a subscriber (a row of `task_feed_subscribers`, kept alive by that store): one
-- notification per statement and ~150 tasks, the JSON array `[["<id>", <updated_at ms>], ...]`, or
-- `*` for "something changed" (an id too long for a notification). A listening store reads the
-- records it has not seen yet (`task_changed`); every few seconds, and when its LISTEN
-- (re)starts, it also reads what changed since its last look (`task_changed_since`), for
-- notifications it missed. With no subscriber anywhere, statements only check that table.
--
-- Heartbeats (a lease extended, nothing a record shows) are not announced.

CREATE TABLE task_feed_subscribers (
  id    text        PRIMARY KEY,
  until timestamptz NOT NULL
);

-- Registers (or keeps alive) a subscribing store for `p_ttl_ms`; returns the database's time
-- (epoch ms), the store's cursor for `task_changed_since`.
CREATE FUNCTION task_feed_subscribe(
  p_id     text,
  p_ttl_ms bigint
) RETURNS double precision
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
  DELETE FROM task_feed_subscribers s WHERE s.until < now() - interval '1 minute';
  INSERT INTO task_feed_subscribers AS s (id, until) VALUES (p_id, now() + p_ttl_ms * interval '1 millisecond')
  ON CONFLICT (id) DO UPDATE SET until = excluded.until;
  SELECT task_epoch_ms(now());
$$;

-- A store's last subscriber left.
CREATE FUNCTION task_feed_unsubscribe(
  p_id text
) RETURNS integer
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
  WITH gone AS (DELETE FROM task_feed_subscribers s WHERE s.id = p_id RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

-- The trigger of both statements below: announces the changed rows, chunked under the 8000-byte
-- limit of a notification payload.
CREATE FUNCTION task_announce_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_channel text := TG_TABLE_SCHEMA || '.task_changes';
  v_payload text;
BEGIN
  IF current_setting('effect_tasks.quiet', true) = 'on'
     OR NOT EXISTS (SELECT 1 FROM task_feed_subscribers s WHERE s.until > now()) THEN
    RETURN NULL;
  END IF;
  FOR v_payload IN
    -- a chunk is the entries that start in its 7000 bytes: at most 7000 + 900 bytes
    SELECT CASE WHEN bool_or(e.size > 900) THEN '*' ELSE '[' || string_agg(e.entry, ',') || ']' END
    FROM (
      SELECT e.entry, e.size, (sum(e.size + 1) OVER (ROWS UNBOUNDED PRECEDING) - e.size - 1) / 7000 AS chunk
      FROM (
        SELECT '[' || to_json(c.id)::text || ',' || task_epoch_ms(c.updated_at)::bigint || ']' AS entry,
               octet_length(to_json(c.id)::text) + 16 AS size
        FROM changed c
      ) e
    ) e
    GROUP BY e.chunk
  LOOP
    PERFORM pg_notify(v_channel, v_payload);
  END LOOP;
  RETURN NULL;
END
$$;

-- (one trigger per event: PostgreSQL allows transition tables only so)
CREATE TRIGGER task_status_inserted AFTER INSERT ON task_status
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION task_announce_changes();

CREATE TRIGGER task_status_updated AFTER UPDATE ON task_status
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION task_announce_changes();

-- The records of these tasks (those that exist), for a store that heard of their change.
CREATE FUNCTION task_changed(
  p_ids text[]
) RETURNS SETOF task_row
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT t.id, t.seq, t.name, t.payload, t.status, t.attempt, t.progress, t.result, t.error,
         t.priority, task_epoch_ms(t.run_at), task_epoch_ms(t.sort_key), task_epoch_ms(t.created_at),
         task_epoch_ms(t.started_at), task_epoch_ms(t.finished_at), task_epoch_ms(t.updated_at),
         t.locked_by, task_epoch_ms(t.locked_until), t.idempotency_key, t.cancel_requested
  FROM task_status t WHERE t.id = ANY (p_ids)
$$;

-- The records changed at or after `p_since`, oldest change first, at most `p_limit`: unfinished
-- tasks (through the claim index) and tasks finished since (through the finished index), never a
-- scan of the finished history.
CREATE FUNCTION task_changed_since(
  p_since timestamptz,
  p_limit integer
) RETURNS SETOF task_row
LANGUAGE sql
STABLE
SET search_path FROM CURRENT
AS $$
  SELECT t.id, t.seq, t.name, t.payload, t.status, t.attempt, t.progress, t.result, t.error,
         t.priority, task_epoch_ms(t.run_at), task_epoch_ms(t.sort_key), task_epoch_ms(t.created_at),
         task_epoch_ms(t.started_at), task_epoch_ms(t.finished_at), task_epoch_ms(t.updated_at),
         t.locked_by, task_epoch_ms(t.locked_until), t.idempotency_key, t.cancel_requested
  FROM (
    SELECT u.* FROM task_status u WHERE u.finished_at IS NULL AND u.updated_at >= p_since
    UNION ALL
    SELECT f.* FROM task_status f WHERE f.finished_at >= p_since
  ) t
  ORDER BY t.updated_at
  LIMIT p_limit
$$;

-- As in 0010, and quiet: a heartbeat changes nothing a record shows.
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
  PERFORM set_config('effect_tasks.quiet', 'on', true);
  WITH held AS (
    SELECT t.id, t.cancel_requested FROM task_status t
    WHERE t.id = ANY (p_ids) AND t.locked_by = p_owner
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
  PERFORM set_config('effect_tasks.quiet', '', true);
  RETURN v_result;
END
$$;

-- the privileges of 0007, for the new functions and table
REVOKE ALL ON FUNCTION
  task_feed_subscribe(text, bigint),
  task_feed_unsubscribe(text),
  task_changed(text[]),
  task_changed_since(timestamptz, integer)
FROM PUBLIC;

DO $$
DECLARE
  v_role text;
  v_functions text := 'task_feed_subscribe(text, bigint), task_feed_unsubscribe(text), '
    || 'task_changed(text[]), task_changed_since(timestamptz, integer)';
BEGIN
  FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
      EXECUTE format('REVOKE ALL ON TABLE task_feed_subscribers FROM %I', v_role);
      EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
    END IF;
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE task_feed_subscribers TO service_role;
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
  END IF;
END
$$;
