/**
 * Cleanup: deletes finished tasks once they are older than their retention (the guide's
 * 7-day `task_status` cleanup), in bounded batches, on a schedule driven by `Clock`. Age is
 * counted from `finishedAt`, so a long task is never deleted the moment it ends. Pending and
 * processing tasks are never deleted.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { TaskStatus } from "../services/TaskRecord.js"
import type { TaskStore } from "../services/TaskStore.js"

/**
 * When and what to clean. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface CleanupOptions {
  /** How often cleanup runs. Default `"1 hour"`. */
  readonly interval?: Duration.DurationInput | undefined
  /** How long finished tasks are kept. Default `"7 days"`. */
  readonly retention?: Duration.DurationInput | undefined
  /** A retention per terminal status, overriding `retention` (e.g. keep failures 30 days). */
  readonly retentionByStatus?: {
    readonly completed?: Duration.DurationInput | undefined
    readonly failed?: Duration.DurationInput | undefined
    readonly cancelled?: Duration.DurationInput | undefined
  } | undefined
  /** Rows deleted per store call. Default 1,000. */
  readonly batchSize?: number | undefined
}

/**
 * Cleanup settings resolved to milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface CleanupPolicy {
  readonly intervalMillis: number
  readonly retentionMillis: Readonly<Record<"completed" | "failed" | "cancelled", number>>
  readonly batchSize: number
}

const millis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/**
 * Resolves options to a policy, with the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const policy = (options: CleanupOptions = {}): CleanupPolicy => {
  const retention = millis(options.retention, Duration.toMillis(Duration.days(7)))
  const byStatus = options.retentionByStatus ?? {}
  const batchSize = options.batchSize ?? 1_000
  if (!(batchSize >= 1)) throw new TypeError("cleanup.batchSize must be at least 1")
  return {
    intervalMillis: millis(options.interval, Duration.toMillis(Duration.hours(1))),
    retentionMillis: {
      completed: millis(byStatus.completed, retention),
      failed: millis(byStatus.failed, retention),
      cancelled: millis(byStatus.cancelled, retention)
    },
    batchSize
  }
}

const statuses: ReadonlyArray<TaskStatus & keyof CleanupPolicy["retentionMillis"]> = ["completed", "failed", "cancelled"]

/**
 * Deletes, now, every finished task past its retention; returns how many.
 *
 * @since 0.1.0
 * @category cleanup
 */
export const runOnce = (store: TaskStore, cleanup: CleanupPolicy): Effect.Effect<number, StoreUnavailable> =>
  Effect.clockWith((clock) =>
    Effect.gen(function*() {
      const now = clock.unsafeCurrentTimeMillis()
      let total = 0
      for (const status of statuses) {
        const cutoff = new Date(now - cleanup.retentionMillis[status])
        while (true) {
          const deleted = yield* store.deleteFinishedBefore(status, cutoff, cleanup.batchSize)
          total += deleted
          if (deleted < cleanup.batchSize) break
        }
      }
      return total
    })
  )

/**
 * Runs cleanup every `intervalMillis`, forever; failures are logged and tried again next time.
 *
 * @since 0.1.0
 * @category cleanup
 */
export const schedule = (store: TaskStore, cleanup: CleanupPolicy): Effect.Effect<never> =>
  Effect.forever(
    Effect.zipRight(
      Effect.sleep(Duration.millis(cleanup.intervalMillis)),
      runOnce(store, cleanup).pipe(
        Effect.tap((deleted) => deleted > 0 ? Effect.logDebug(`cleanup deleted ${deleted} finished tasks`) : Effect.void),
        Effect.catchAll((error) => Effect.logWarning(`cleanup failed: ${error.reason}`))
      )
    )
  )
