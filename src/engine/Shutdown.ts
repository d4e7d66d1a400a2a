/**
 * The graceful shutdown, run when the engine's scope closes (before its fibers are interrupted):
 * intake stops (`closing`), running attempts get `shutdownTimeout` to finish, the rest are
 * interrupted and handed back to the store as `pending`, and awaiters here are interrupted.
 *
 * @since 0.2.0
 * @internal
 */
import { Cause, Deferred, Duration, Effect, Option } from "effect"
import * as Dispatcher from "./Dispatcher.js"
import type { Engine } from "./EngineState.js"
import * as EngineState from "./EngineState.js"

/** The shutdown finalizer's effect. @internal */
export const shutdown = (engine: Engine): Effect.Effect<void> => {
  const { settings, state } = engine
  const allSettled: Effect.Effect<void> = Effect.flatMap(Deferred.make<void>(), (settled) =>
    Effect.suspend(() => {
      if (state.running.size === 0 && state.claiming === 0) return Effect.void
      return Effect.zipRight(EngineState.awaitSettled(state, settled), allSettled)
    }))
  return Effect.gen(function*() {
    EngineState.close(state)
    const finished = yield* Effect.interruptible(allSettled).pipe(
      Effect.timeout(Duration.millis(settings.shutdownMillis)),
      Effect.option
    )
    if (Option.isNone(finished)) {
      const ids = Array.from(state.running.keys())
      yield* Effect.logWarning(`shutdown: interrupting ${ids.length} running task(s); they go back to pending`)
      yield* Effect.forEach(ids, (id) => Dispatcher.stopRunning(engine, id, "shutdown"), { discard: true })
      yield* allSettled
    }
    EngineState.interruptWaiters(state)
  }).pipe(Effect.catchAllCause((cause) => Effect.logError("shutdown failed", Cause.pretty(cause))))
}
