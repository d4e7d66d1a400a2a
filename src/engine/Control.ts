/**
 * Cancel and retry: a task running here is interrupted by its supervisor (`Dispatcher`), one
 * running elsewhere is asked to stop through the store; `true` only for what ended so.
 *
 * @since 0.2.0
 * @internal
 */
import { Duration, Effect, Option } from "effect"
import type { StoreUnavailable, TaskNotFound } from "../services/TaskError.js"
import type { TaskId } from "../services/TaskRecord.js"
import * as Dispatcher from "./Dispatcher.js"
import type { Engine } from "./EngineState.js"
import * as EngineState from "./EngineState.js"
import type * as Queries from "./Queries.js"
import * as StoreRetry from "./StoreRetry.js"
import * as Validate from "./Validate.js"

/** The engine's cancel and retry. @internal */
export const make = (engine: Engine, queries: ReturnType<typeof Queries.make>) => {
  const { metrics, settings, state, store } = engine
  const { get, notFound, terminal } = queries
  const endedCancelled = (id: string): Effect.Effect<boolean> =>
    Effect.match(terminal(id), { onFailure: () => false, onSuccess: (record) => record.status === "cancelled" })

  const cancel = (id: string): Effect.Effect<boolean, TaskNotFound | StoreUnavailable> =>
    Effect.suspend(() => {
      if (Validate.textIssue(id) !== undefined) return notFound(id)
      const running = state.running.get(id)
      if (running?.behind !== undefined) {
        // its attempt is over and its settlement on the way: answer from what lands
        const behind = running.behind
        return Effect.zipRight(Effect.async<void>((resume) => void behind.push(() => resume(Effect.void))), cancel(id))
      }
      if (running !== undefined) {
        // interrupt here, then wait for the worker to settle it as cancelled
        // true only when it ends cancelled: the attempt may complete before the interruption lands
        return Effect.zipRight(Dispatcher.stopRunning(engine, id, "cancel"), endedCancelled(id))
      }
      return Effect.flatMap(StoreRetry.briefly(store.cancel(id as TaskId)), (result): Effect.Effect<
        boolean,
        TaskNotFound | StoreUnavailable
      > => {
        switch (result) {
          case "notFound":
            return notFound(id)
          case "finished":
            return Effect.succeed(false)
          case "requested":
            // another instance runs it and stops it at its next heartbeat, unless it finishes
            // first: wait (up to a lease) for how it ends
            return Effect.timeoutTo(endedCancelled(id), {
              duration: Duration.millis(settings.leaseMillis + settings.heartbeatMillis),
              onSuccess: (cancelled) => cancelled,
              onTimeout: () => true
            })
          case "cancelled":
            return Effect.flatMap(get(id), (record) =>
              Effect.sync(() => {
                if (Option.isSome(record)) {
                  EngineState.resolveWaiters(state, record.value)
                  EngineState.signalRoom(state)
                  metrics.record(record.value.name, "cancelled", 0)
                }
                EngineState.signalSettled(state)
                return true
              }))
        }
      })
    })

  const retry = (id: string): Effect.Effect<boolean, TaskNotFound | StoreUnavailable> =>
    Validate.textIssue(id) !== undefined ? notFound(id) : Effect.flatMap(StoreRetry.briefly(store.requeue(id as TaskId)), (result): Effect.Effect<
      boolean,
      TaskNotFound | StoreUnavailable
    > => {
      switch (result) {
        case "notFound":
          return notFound(id)
        case "notFinished":
          return Effect.succeed(false)
        case "requeued":
          return Effect.flatMap(get(id), (record) =>
            Effect.sync(() => {
              EngineState.wakeWorkers(state, 1)
              if (Option.isSome(record)) metrics.record(record.value.name, "submitted", 1)
              return true
            }))
      }
    })
  return { cancel, retry }
}
