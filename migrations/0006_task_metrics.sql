-- effect-tasks 0006: the guide's `task_metrics`: the latest metrics snapshot of each engine
-- instance, one row per task name (and `*` for the instance's total), upserted on every flush by
-- `TaskMetrics.layerSql`. Counters are cumulative per instance: sum them across instances for a
-- queue's figures.

CREATE TABLE task_metrics (
  instance_id       text             NOT NULL,
  task_name         text             NOT NULL,
  submitted         bigint           NOT NULL,
  started           bigint           NOT NULL,
  completed         bigint           NOT NULL,
  failed            bigint           NOT NULL,
  retried           bigint           NOT NULL,
  timed_out         bigint           NOT NULL,
  cancelled         bigint           NOT NULL,
  released          bigint           NOT NULL,
  running           bigint           NOT NULL,
  queued            bigint           NOT NULL,
  duration_count    bigint           NOT NULL,
  duration_total_ms double precision NOT NULL,
  duration_min_ms   double precision NOT NULL,
  duration_max_ms   double precision NOT NULL,
  updated_at        timestamptz      NOT NULL,
  PRIMARY KEY (instance_id, task_name)
);

CREATE INDEX task_metrics_updated_at_idx ON task_metrics (updated_at);
