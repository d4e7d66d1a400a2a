/**
 * The SQL `TaskMetrics`: the memory metrics (snapshot and Effect `Metric`s), plus a fiber that
 * writes the snapshot to `task_metrics` (the guide's table) every `flushInterval`, and once more
 * when the layer closes. One row per task name and `*` for the total, upserted by instance id:
 * the table holds each instance's latest cumulative figures. A flush that fails is logged and
 * tried again at the next interval; recording never waits for the database.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { Scope } from "effect"
import { Duration, Effect, Layer } from "effect"
import * as crypto from "node:crypto"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { MetricsSnapshot, TaskCounts } from "../services/TaskMetrics.js"
import { TaskMetrics } from "../services/TaskMetrics.js"
import * as MemoryTaskMetrics from "./MemoryTaskMetrics.js"
import * as PgMigrations from "./PgMigrations.js"

/**
 * Options of the SQL metrics. Every field is optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlTaskMetricsOptions {
  /** The schema of `task_metrics` ["public"]. */
  readonly schema?: string | undefined
  /** Apply the migrations when the layer is built [true]. */
  readonly migrate?: boolean | undefined
  /** How often the snapshot is written ["10 seconds"]. */
  readonly flushInterval?: Duration.DurationInput | undefined
  /** The row key of this instance: pass the engine's `instanceId` [a random `metrics-...` id]. */
  readonly instanceId?: string | undefined
}

const rowOf = (instanceId: string, taskName: string, counts: TaskCounts, at: Date) => ({
  instance_id: instanceId,
  task_name: taskName,
  submitted: counts.submitted,
  started: counts.started,
  completed: counts.completed,
  failed: counts.failed,
  retried: counts.retried,
  timed_out: counts.timedOut,
  cancelled: counts.cancelled,
  released: counts.released,
  running: counts.running,
  queued: counts.queued,
  duration_count: counts.duration.count,
  duration_total_ms: counts.duration.totalMillis,
  duration_min_ms: counts.duration.minMillis,
  duration_max_ms: counts.duration.maxMillis,
  updated_at: at.toISOString()
})

const columns = [
  "submitted",
  "started",
  "completed",
  "failed",
  "retried",
  "timed_out",
  "cancelled",
  "released",
  "running",
  "queued",
  "duration_count"
]
const realColumns = ["duration_total_ms", "duration_min_ms", "duration_max_ms"]

/**
 * The rows of a snapshot: one per task name, and `*` for the total.
 *
 * @since 0.1.0
 * @category encoding
 */
export const rows = (instanceId: string, snapshot: MetricsSnapshot) => [
  rowOf(instanceId, "*", snapshot.total, snapshot.timestamp),
  ...Object.entries(snapshot.tasks).map(([name, counts]) => rowOf(instanceId, name, counts, snapshot.timestamp))
]

/**
 * Builds SQL metrics on the `SqlClient` in context (PostgreSQL); the flush fiber lives as long as
 * the scope, whose closing writes a last snapshot.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqlTaskMetricsOptions = {}
): Effect.Effect<TaskMetrics, StoreUnavailable, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = PgMigrations.validateSchema(options.schema ?? PgMigrations.defaultSchema)
    const interval = Duration.decode(options.flushInterval ?? "10 seconds")
    const instanceId = options.instanceId ?? `metrics-${crypto.randomBytes(6).toString("hex")}`
    const sql = yield* SqlClient.SqlClient
    if (options.migrate !== false) yield* PgMigrations.run(schema)
    const memory = yield* MemoryTaskMetrics.make
    const all = [...columns, ...realColumns]
    const upsert = `INSERT INTO "${schema}".task_metrics (instance_id, task_name, ${all.join(", ")}, updated_at)
SELECT instance_id, task_name, ${all.join(", ")}, updated_at
FROM jsonb_to_recordset($1::jsonb) AS x(instance_id text, task_name text, ${
      columns.map((c) => `${c} bigint`).join(", ")
    }, ${realColumns.map((c) => `${c} double precision`).join(", ")}, updated_at timestamptz)
ON CONFLICT (instance_id, task_name) DO UPDATE SET ${
      [...all, "updated_at"].map((c) => `${c} = EXCLUDED.${c}`).join(", ")
    }`
    const flush = memory.snapshot.pipe(
      Effect.flatMap((snapshot) => sql.unsafe(upsert, [JSON.stringify(rows(instanceId, snapshot))])),
      Effect.asVoid,
      Effect.catchAll((error) => Effect.logWarning(`task_metrics: could not write the snapshot: ${error.message}`))
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(interval), flush)))
    yield* Effect.addFinalizer(() => flush)
    return memory
  })

/**
 * Metrics in memory, written to `task_metrics` every `flushInterval`, on the `SqlClient` in
 * context (PostgreSQL).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  options: SqlTaskMetricsOptions = {}
): Layer.Layer<TaskMetrics, StoreUnavailable, SqlClient.SqlClient> => {
  PgMigrations.validateSchema(options.schema ?? PgMigrations.defaultSchema)
  return Layer.scoped(TaskMetrics, make(options))
}
