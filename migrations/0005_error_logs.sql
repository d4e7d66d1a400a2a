-- effect-tasks 0005: the guide's `error_logs`: one row per reported failure (each final failure,
-- and each failed attempt when the engine reports attempts). Written by `ErrorReporter.layerSql`.

CREATE TABLE error_logs (
  id          bigserial   PRIMARY KEY,
  task_id     text        NOT NULL,
  error       text        NOT NULL,
  -- { task, attempt, final, tag, cause, payload } with Schema.Redacted fields already redacted
  context     jsonb       NOT NULL,
  "timestamp" timestamptz NOT NULL
);

CREATE INDEX error_logs_task_id_idx ON error_logs (task_id);
CREATE INDEX error_logs_timestamp_idx ON error_logs ("timestamp");
