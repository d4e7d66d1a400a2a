/**
 * The throttled progress writes of a SQL store: at most one `task_set_progress` per
 * `progressInterval` for the whole store. Updates wait, by task and owner, for the next write, which
 * is in one of these states:
 * - *leading*: no write within the interval: the pending updates go at once, and the caller
 *   sees them land;
 * - *scheduled*: a write came too soon: one trailing flush is scheduled for the interval's end,
 *   and later updates join it;
 * - an update still pending when its attempt settles is taken by the settlement (`take`), so an
 *   attempt's last progress always lands.
 *
 * @since 0.1.0
 * @internal
 */
import { Duration, Effect } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { TaskId, TaskRecord } from "../services/TaskRecord.js"
import type { SqlStoreContext } from "./SqlStoreContext.js"
import type { ProgressArg } from "./TaskFunctions.js"
import { toRecord } from "./TaskFunctions.js"

/** @internal */
export interface SqlProgress {
  /** The port's `setProgress`. */
  readonly setProgress: (id: TaskId, owner: string, progress: number) => Effect.Effect<void, StoreUnavailable>
  /** The attempt's last progress not yet written, taken off the queue: its settlement carries it. */
  readonly take: (id: TaskId, owner: string) => number | undefined
}

/** The progress writer of a store, whose trailing flushes are forked in its scope. @internal */
export const make = (
  context: SqlStoreContext,
  publish: (records: ReadonlyArray<TaskRecord>) => void,
  progressInterval: Duration.DurationInput | undefined
): SqlProgress => {
  const { caller, clock, now, scope } = context
  const progressMillis = Duration.toMillis(Duration.decode(progressInterval ?? "500 millis"))
  // by task and owner: a stale owner's progress must not replace the holder's
  const pendingProgress = new Map<string, ProgressArg>()
  const progressKey = (id: string, owner: string): string => `${id}\u0000${owner}`
  let lastWrite = Number.NEGATIVE_INFINITY
  let writing = false
  let scheduled = false
  const writeProgress = (updates: ReadonlyArray<ProgressArg>): Effect.Effect<void, StoreUnavailable> =>
    Effect.map(
      caller.call("task_set_progress", { p_updates: updates, p_now: now() }),
      (rows) => publish(rows.map(toRecord))
    )
  const takePending = (): ReadonlyArray<ProgressArg> => {
    const updates = Array.from(pendingProgress.values())
    pendingProgress.clear()
    lastWrite = clock.unsafeCurrentTimeMillis()
    return updates
  }
  const trailingFlush: Effect.Effect<void> = Effect.suspend(() => {
    scheduled = false
    if (pendingProgress.size === 0) return Effect.void
    return writeProgress(takePending()).pipe(
      Effect.catchAll((error) => Effect.logDebug(`progress not recorded: ${error.reason}`))
    )
  })
  const setProgress = (id: TaskId, owner: string, progress: number): Effect.Effect<void, StoreUnavailable> =>
    Effect.suspend(() => {
      pendingProgress.set(progressKey(id, owner), { id, owner, progress })
      const elapsed = clock.unsafeCurrentTimeMillis() - lastWrite
      if (elapsed >= progressMillis && !writing) {
        // the leading write goes at once, and its caller sees it land
        writing = true
        return Effect.ensuring(writeProgress(takePending()), Effect.sync(() => {
          writing = false
        }))
      }
      if (scheduled) return Effect.void
      scheduled = true
      const wait = Math.max(0, progressMillis - elapsed)
      const flush = Effect.interruptible(Effect.zipRight(Effect.sleep(Duration.millis(wait)), trailingFlush))
      return Effect.asVoid(Effect.forkIn(flush, scope))
    })

  /** The attempt's last progress not yet written: its settlement carries it. */
  const takeProgress = (id: TaskId, owner: string): number | undefined => {
    if (pendingProgress.size === 0) return undefined
    const key = progressKey(id, owner)
    const progress = pendingProgress.get(key)?.progress
    pendingProgress.delete(key)
    return progress
  }

  return { setProgress, take: takeProgress }
}
