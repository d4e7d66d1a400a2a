/**
 * The metrics port: counters, gauges and durations per task name (the guide's `TaskMetrics`).
 * The engine records each lifecycle event; a snapshot gives the figures of this engine instance.
 *
 * Failure decision: recording sits on the hot path and never fails. `record` is synchronous: the
 * engine calls it inside its own `Effect.sync` sections, where an Effect per call would cost
 * more than the counting itself.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Context } from "effect"

/**
 * A lifecycle event and what its `value` means:
 * `submitted` (how many), `started` (1), `completed` / `failed` / `retried` (the attempt's
 * duration in ms), `timedOut` (1, besides the `retried` or `failed` that follows), `cancelled`
 * (1 when the task was running, 0 when it was pending), `released` (1: handed back at shutdown).
 *
 * @since 0.1.0
 * @category models
 */
export type MetricEvent =
  | "submitted"
  | "started"
  | "completed"
  | "failed"
  | "retried"
  | "timedOut"
  | "cancelled"
  | "released"

/**
 * The figures of one task name (or all of them).
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskCounts {
  readonly submitted: number
  readonly started: number
  readonly completed: number
  readonly failed: number
  readonly retried: number
  readonly timedOut: number
  readonly cancelled: number
  readonly released: number
  /** Attempts running now. */
  readonly running: number
  /** Tasks waiting: submitted, retrying or released, and not yet started or cancelled. */
  readonly queued: number
  /** Durations of finished attempts, in milliseconds. */
  readonly duration: {
    readonly count: number
    readonly totalMillis: number
    readonly minMillis: number
    readonly maxMillis: number
  }
}

/**
 * The figures of an engine: the totals over every task name at the top level (and again as
 * `total`), and per task name in `tasks`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MetricsSnapshot extends TaskCounts {
  readonly timestamp: Date
  readonly total: TaskCounts
  readonly tasks: Readonly<Record<string, TaskCounts>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskMetrics {
  /** Records one event of a task named `name`; see `MetricEvent` for `value`. Synchronous, cheap, never throws. */
  readonly record: (name: string, event: MetricEvent, value: number) => void
  /** The figures so far, per task name and in total. */
  readonly snapshot: Effect.Effect<MetricsSnapshot>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TaskMetrics: Context.Tag<TaskMetrics, TaskMetrics> = Context.GenericTag<TaskMetrics>(
  "effect-tasks/TaskMetrics"
)
