/**
 * The error-reporting port: where failures go (the guide's `error_logs`). The engine reports each
 * final failure, and each failed attempt when asked to (`errorReports: "attempts"`).
 *
 * Failure decision: reporting never fails the task; an adapter that cannot write logs a warning.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Context, Schema } from "effect"

/**
 * One failure, as the guide's `ErrorReport` had it: the task, the error's message, the context
 * (task name, attempt, error tag, pretty cause, and the payload with every `Schema.Redacted` field
 * replaced by `"<redacted>"`) and when it happened.
 *
 * @since 0.1.0
 * @category models
 */
export const ErrorReport = Schema.Struct({
  taskId: Schema.String,
  error: Schema.String,
  context: Schema.Struct({
    task: Schema.String,
    attempt: Schema.Number,
    final: Schema.Boolean,
    tag: Schema.String,
    cause: Schema.String,
    payload: Schema.Unknown
  }),
  timestamp: Schema.Date
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ErrorReport extends Schema.Schema.Type<typeof ErrorReport> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface ErrorReporter {
  /** Records one failure. Never fails: adapters log what they could not write. */
  readonly report: (report: ErrorReport) => Effect.Effect<void>
  /** The reports kept, newest last (memory) or the most recent ones (SQL). */
  readonly reports: Effect.Effect<ReadonlyArray<ErrorReport>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const ErrorReporter: Context.Tag<ErrorReporter, ErrorReporter> = Context.GenericTag<ErrorReporter>(
  "effect-tasks/ErrorReporter"
)
