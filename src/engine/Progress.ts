/**
 * Progress reporting from inside a running task (the guide's ProgressTracker). The engine puts
 * the running attempt in a `FiberRef`, so `Progress.set` needs no service in the handler's
 * context; fibers the handler forks inherit it. Outside a task both functions do nothing.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef } from "effect"

/**
 * The attempt a fiber is working for, as the engine sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CurrentTask {
  readonly id: string
  readonly name: string
  readonly attempt: number
  /** Records a percentage (already clamped to 0..100). */
  readonly report: (percent: number) => Effect.Effect<void>
  /** Units counted by `advance`, owned by the attempt's fibers. */
  units: number
}

/**
 * A worker's slot: the attempt it runs now. A worker sets its slot in `currentTask` once and
 * changes only `current` per attempt (a `FiberRef.set` per attempt measured microseconds); a fiber
 * forked inside an attempt gets that attempt itself, fixed at fork time, so that it never reports
 * progress to a later one.
 *
 * @since 0.1.0
 * @category models
 * @internal
 */
export interface WorkerSlot {
  readonly _tag: "WorkerSlot"
  current: CurrentTask | undefined
}

const isSlot = (value: CurrentTask | WorkerSlot | undefined): value is WorkerSlot =>
  value !== undefined && "_tag" in value && value._tag === "WorkerSlot"

/**
 * The attempt the current fiber works for, or its worker's slot.
 *
 * @since 0.1.0
 * @category fiber refs
 * @internal
 */
export const currentTask: FiberRef.FiberRef<CurrentTask | WorkerSlot | undefined> = FiberRef.unsafeMake<
  CurrentTask | WorkerSlot | undefined
>(undefined, {
  fork: (value) => (isSlot(value) ? value.current : value),
  // a child's value never replaces a worker's slot when it is joined
  join: (parent) => parent
})

/**
 * The attempt the current fiber works for, if any.
 *
 * @since 0.1.0
 * @category progress
 */
export const current: Effect.Effect<CurrentTask | undefined> = Effect.map(
  FiberRef.get(currentTask),
  (value) => (isSlot(value) ? value.current : value)
)

const clamp = (percent: number): number => (percent <= 0 ? 0 : percent >= 100 ? 100 : percent)

/**
 * Sets the running task's progress, a percentage from 0 to 100 (clamped; `NaN` is ignored).
 *
 * @example
 * import { Effect } from "effect"
 * import { Progress } from "effect-tasks"
 *
 * const handler = Effect.gen(function*() {
 *   yield* Progress.set(50)
 * })
 *
 * @since 0.1.0
 * @category progress
 */
export const set = (percent: number): Effect.Effect<void> =>
  Effect.flatMap(current, (task) =>
    task === undefined || Number.isNaN(percent) ? Effect.void : task.report(clamp(percent)))

/**
 * Counts `done` more units out of `total` and sets the progress to the share done so far, capped
 * at 100: the guide's `ProgressTracker.update(completed)`. Call it once per processed chunk.
 *
 * @example
 * import { Effect } from "effect"
 * import { Progress } from "effect-tasks"
 *
 * const processAll = (chunks: ReadonlyArray<ReadonlyArray<number>>, total: number) =>
 *   Effect.forEach(chunks, (chunk) => Progress.advance(chunk.length, total), { discard: true })
 *
 * @since 0.1.0
 * @category progress
 */
export const advance = (done: number, total: number): Effect.Effect<void> =>
  Effect.flatMap(current, (task) => {
    if (task === undefined || !(total > 0) || Number.isNaN(done)) return Effect.void
    task.units += done
    return task.report(clamp((task.units / total) * 100))
  })
