-- effect-tasks 0001: the task table (the guide's `task_status`).
--
-- Apply with `search_path` set to the target schema (the layer does so; on Supabase the default,
-- `public`, is fine): nothing here names a schema, and the functions of later migrations pin the
-- schema they were created in (`SET search_path FROM CURRENT`).
--
-- A row is one task. `status` moves pending -> processing -> completed | failed | cancelled, and
-- back to pending on a retry, a released attempt or an expired lease (see 0002 and 0003).

CREATE TABLE task_status (
  id               text        PRIMARY KEY,
  -- submission order: the FIFO tie-break of claims and the order of listings
  seq              bigserial   NOT NULL,
  name             text        NOT NULL,
  payload          jsonb,
  status           text        NOT NULL DEFAULT 'pending'
                   CONSTRAINT task_status_status_check
                   CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  -- attempts made so far, incremented by each claim
  attempt          integer     NOT NULL DEFAULT 0,
  progress         double precision NOT NULL DEFAULT 0
                   CONSTRAINT task_status_progress_check CHECK (progress >= 0 AND progress <= 100),
  result           jsonb,
  -- { tag, message, cause, failure? } of the last failed attempt
  error            jsonb,
  priority         integer     NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL,
  -- the aged priority key, run_at - priority * aging: claims take the smallest first
  sort_key         timestamptz NOT NULL,
  created_at       timestamptz NOT NULL,
  started_at       timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL,
  -- the lease of a processing task: who runs it, and until when nobody else may; both are set
  -- exactly while the task is processing
  locked_by        text,
  locked_until     timestamptz,
  idempotency_key  text,
  -- set by a cancel while processing; the owner's next heartbeat sees it
  cancel_requested boolean     NOT NULL DEFAULT false
);

-- at most one task per idempotency key, enforced by the index (INSERT ... ON CONFLICT)
CREATE UNIQUE INDEX task_status_idempotency_key_idx ON task_status (idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- claims: pending tasks in claim order
CREATE INDEX task_status_claim_idx ON task_status (sort_key, seq) WHERE status = 'pending';

-- the next due time of pending tasks (the engine's timer)
CREATE INDEX task_status_run_at_idx ON task_status (run_at) WHERE status = 'pending';

-- leases: expired ones are claimable again
CREATE INDEX task_status_lease_idx ON task_status (locked_until) WHERE status = 'processing';

-- cleanup: finished tasks by status and age
CREATE INDEX task_status_finished_idx ON task_status (status, finished_at) WHERE finished_at IS NOT NULL;

-- listings, newest first, with a cursor
CREATE INDEX task_status_seq_idx ON task_status (seq);
