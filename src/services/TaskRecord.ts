/**
 * The persisted shape of a task: its id, status, attempts, progress, encoded payload and result,
 * and the lifecycle timestamps. Every store keeps and returns records of this shape.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The id of a submitted task, unique across engines and processes.
 *
 * @since 0.1.0
 * @category models
 */
export const TaskId = Schema.String.pipe(Schema.brand("TaskId"))

/**
 * @since 0.1.0
 * @category models
 */
export type TaskId = typeof TaskId.Type

/**
 * Where a task is in its lifecycle. `completed`, `failed` and `cancelled` are terminal.
 *
 * @since 0.1.0
 * @category models
 */
export const TaskStatus = Schema.Literal("pending", "processing", "completed", "failed", "cancelled")

/**
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = typeof TaskStatus.Type

/**
 * The statuses a task never leaves.
 *
 * @since 0.1.0
 * @category models
 */
export const terminalStatuses: ReadonlyArray<TaskStatus> = ["completed", "failed", "cancelled"]

/**
 * Whether a status is terminal (`completed`, `failed` or `cancelled`).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTerminal = (status: TaskStatus): boolean =>
  status === "completed" || status === "failed" || status === "cancelled"

/**
 * How an attempt or a task failed, as stored on the record: the error's tag, a readable message,
 * the pretty-printed cause, and for a typed failure its encoded value (so `await` can give the
 * typed error back, even in another process).
 *
 * @since 0.1.0
 * @category models
 */
export const TaskErrorInfo = Schema.Struct({
  tag: Schema.String,
  message: Schema.String,
  cause: Schema.String,
  failure: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export type TaskErrorInfo = typeof TaskErrorInfo.Type

/**
 * A task as a store holds it. Payload and result are kept encoded (JSON-safe), as the task's
 * Schemas encode them. Times are `Date`s (ISO strings once encoded).
 *
 * @since 0.1.0
 * @category models
 */
export const TaskRecord = Schema.Struct({
  id: TaskId,
  name: Schema.String,
  payload: Schema.Unknown,
  status: TaskStatus,
  /** Attempts made so far: incremented when an attempt starts (1 while the first runs). */
  attempt: Schema.Int,
  /** 0..100; 100 once completed. */
  progress: Schema.Number,
  result: Schema.Unknown,
  error: Schema.NullOr(TaskErrorInfo),
  priority: Schema.Int,
  runAt: Schema.Date,
  createdAt: Schema.Date,
  startedAt: Schema.NullOr(Schema.Date),
  finishedAt: Schema.NullOr(Schema.Date),
  updatedAt: Schema.Date,
  lockedBy: Schema.NullOr(Schema.String),
  lockedUntil: Schema.NullOr(Schema.Date),
  idempotencyKey: Schema.NullOr(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskRecord extends Schema.Schema.Type<typeof TaskRecord> {}

/**
 * What a store needs to insert a task; the store fills in the rest of the record.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewTask {
  readonly id: TaskId
  readonly name: string
  readonly payload: unknown
  readonly priority: number
  readonly runAt: Date
  readonly idempotencyKey: string | null
}

/**
 * A filter for listing records; every field is optional. Records come newest first.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskFilter {
  readonly status?: TaskStatus | ReadonlyArray<TaskStatus> | undefined
  readonly name?: string | undefined
  /** At most this many records; all of them when absent. */
  readonly limit?: number | undefined
  /** The id of the last record of the previous page: the page starts after it. */
  readonly cursor?: TaskId | string | undefined
}

/**
 * The latest time a record holds: the end of year 9999, where ISO 8601 dates, PostgreSQL and
 * JavaScript agree. Submits beyond it are refused; a stored time beyond it (or no time at all, as
 * PostgreSQL's `infinity`) is read as this, or as the epoch when below.
 *
 * @since 0.2.0
 * @category constants
 */
export const maxTimeMillis = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/**
 * A stored time as a valid `Date`: a time that is none (NaN, PostgreSQL's `infinity`) or out of
 * range becomes the nearest end of the range, so one bad row never breaks a listing. @internal
 */
export const storedDate = (value: Date | number | string): Date => {
  const millis = typeof value === "number" ? value : typeof value === "string" ? Date.parse(value) : value.getTime()
  if (millis >= 0 && millis <= maxTimeMillis) return value instanceof Date ? value : new Date(millis)
  const high = millis > maxTimeMillis || (typeof value === "string" && /^\+?infinity$/i.test(value))
  return new Date(high ? maxTimeMillis : 0)
}
