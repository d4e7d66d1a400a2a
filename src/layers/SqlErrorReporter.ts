/**
 * The SQL `ErrorReporter`: each report becomes a row of `error_logs` (the guide's table), in the
 * schema of the Postgres store, and is logged as a warning as the memory reporter does. Reporting
 * never fails the task: a row that cannot be written is logged instead.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer } from "effect"
import type { ErrorReport } from "../services/ErrorReporter.js"
import { ErrorReporter } from "../services/ErrorReporter.js"
import type { StoreUnavailable } from "../services/TaskError.js"
import * as PgMigrations from "./PgMigrations.js"
import { toDate } from "./TaskFunctions.js"

/**
 * Options of the SQL reporter. Every field is optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlErrorReporterOptions {
  /** The schema of `error_logs` ["public"]. */
  readonly schema?: string | undefined
  /** Apply the migrations when the layer is built [true]. */
  readonly migrate?: boolean | undefined
  /** How many of the most recent reports `reports` reads [1,000]. */
  readonly recent?: number | undefined
}

interface Row {
  readonly task_id: string
  readonly error: string
  readonly context: ErrorReport["context"]
  readonly timestamp: Date | string
}

/** JSON for a context whose payload may hold what JSON cannot (a bigint is written as a string). */
const json = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v))

/**
 * Builds a SQL reporter on the `SqlClient` in context (PostgreSQL).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqlErrorReporterOptions = {}
): Effect.Effect<ErrorReporter, StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = PgMigrations.validateSchema(options.schema ?? PgMigrations.defaultSchema)
    const recent = options.recent ?? 1_000
    const sql = yield* SqlClient.SqlClient
    if (options.migrate !== false) yield* PgMigrations.run(schema)
    const table = `"${schema}".error_logs`
    const insert = `INSERT INTO ${table} (task_id, error, context, "timestamp") VALUES ($1, $2, $3::jsonb, $4)`
    const select = `SELECT task_id, error, context, "timestamp" FROM ${table} ORDER BY id DESC LIMIT $1`
    const warn = (what: string) => (error: SqlError) =>
      Effect.logWarning(`error_logs: could not ${what}: ${error.message}`, error.cause)
    return ErrorReporter.of({
      report: (report) =>
        Effect.zipRight(
          Effect.logWarning(`task ${report.context.task} ${report.taskId} failed: ${report.error}`).pipe(
            Effect.annotateLogs({
              taskId: report.taskId,
              task: report.context.task,
              attempt: report.context.attempt,
              final: report.context.final
            })
          ),
          sql.unsafe(insert, [report.taskId, report.error, json(report.context), report.timestamp]).pipe(
            Effect.asVoid,
            Effect.catchAll(warn("write a report"))
          )
        ),
      reports: sql.unsafe<Row>(select, [recent]).pipe(
        Effect.map((rows) =>
          rows.map((row): ErrorReport => ({
            taskId: row.task_id,
            error: row.error,
            context: row.context,
            timestamp: toDate(row.timestamp)!
          })).reverse()
        ),
        Effect.catchAll((error) => Effect.as(warn("read reports")(error), []))
      )
    })
  })

/**
 * Error reports as rows of `error_logs`, on the `SqlClient` in context (PostgreSQL).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSql = (
  options: SqlErrorReporterOptions = {}
): Layer.Layer<ErrorReporter, StoreUnavailable, SqlClient.SqlClient> => {
  PgMigrations.validateSchema(options.schema ?? PgMigrations.defaultSchema)
  return Layer.effect(ErrorReporter, make(options))
}
