/**
 * Registering handlers: one per task name (a second one is a defect when the layer is built);
 * each becomes a `Registered` run function with its timeout, span and context, and registration
 * wakes the workers and the timer.
 *
 * @since 0.2.0
 * @internal
 */
import type { Context } from "effect"
import { Duration, Effect } from "effect"
import { TaskTimeout } from "../services/TaskError.js"
import type { Engine, Registered } from "./EngineState.js"
import * as EngineState from "./EngineState.js"
import * as Handlers from "./state/Handlers.js"
import type * as Task from "./Task.js"

/** The engine's `register`; `serviceContext` is what the workers run with (known once the service is made). @internal */
export const make = (
  engine: Engine,
  tracing: boolean,
  serviceContext: () => Context.Context<never>
): (handler: Task.Handler) => Effect.Effect<void> => {
  const { state } = engine
  const register = (handler: Task.Handler): Effect.Effect<void> =>
    Effect.suspend(() => {
      const definition = handler.definition
      const existing = state.handlers.get(definition.name)
      if (existing !== undefined) {
        if (existing.handler === handler) return Effect.void
        return Effect.die(
          new TypeError(
            `TaskEngine: a second handler for task "${definition.name}"; each task name has one handler per engine`
          )
        )
      }
      // the handler's layer context is provided per attempt only when it holds services the
      // workers do not already have: Effect.provide costs microseconds on the hot path
      let needsContext = false
      for (const [key, value] of handler.context.unsafeMap) {
        if (key === "effect/Scope") continue
        if (serviceContext().unsafeMap.get(key) !== value) {
          needsContext = true
          break
        }
      }
      const timeout = definition.timeout
      const run = (payload: unknown, task: Task.TaskInfo): Effect.Effect<unknown, unknown> => {
        let effect = handler.run(payload, task)
        if (timeout !== undefined) {
          effect = Effect.timeoutFail(effect, {
            duration: timeout,
            onTimeout: () =>
              new TaskTimeout({
                id: task.id,
                task: task.name,
                attempt: task.attempt,
                timeoutMillis: Duration.toMillis(timeout)
              })
          })
        }
        if (tracing) {
          effect = Effect.withSpan(effect, `effect-tasks.attempt ${task.name}`, {
            kind: "consumer",
            captureStackTrace: false,
            attributes: { "task.id": task.id, "task.name": task.name, "task.attempt": task.attempt }
          })
        }
        return needsContext ? Effect.provide(effect, handler.context) : effect
      }
      const registered: Registered = { definition, handler, codecs: EngineState.codecsOf(definition), run }
      Handlers.add(state, definition, registered)
      EngineState.wakeWorkers(state, state.parked.length)
      EngineState.rearm(state)
      return Effect.void
    })
  return register
}
