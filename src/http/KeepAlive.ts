/**
 * Keeping a serverless runtime alive after an accepted submit, until the engine has nothing left
 * to do. One watcher fiber at a time polls the engine; every request that submitted work
 * registers a wait on it with the `WaitUntil` in its context (none: nothing is registered).
 *
 * The watcher's states: absent; watching (drain the engine, then, in `"idle"` mode, look for
 * pending tasks and poll again while some wait out a backoff). A submit while watching marks it
 * dirty, so a watcher that found the engine idle just before that submit looks once more instead
 * of releasing the runtime. When it finds the engine idle and not dirty, the waits resolve and
 * the watcher is absent again.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Option } from "effect"
import type * as Scope from "effect/Scope"
import type { TaskEngine } from "../engine/TaskEngine.js"
import { WaitUntil } from "../services/WaitUntil.js"

/**
 * When the runtime may be let go: `"drained"` once no task runs and none is due now (a retry
 * waiting out its backoff does not hold it); `"idle"` once no task is pending at all.
 *
 * @since 0.1.0
 * @category models
 */
export type Until = "drained" | "idle"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** When the runtime may be let go ["idle"]. */
  readonly until?: Until | undefined
  /** How often an `"idle"` watcher looks again while tasks wait for a later time ["200 millis"]. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * The keep-alive of one engine.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeepAlive {
  /** Registers a wait until the engine is idle with the `WaitUntil` of the caller's context, if any. */
  readonly register: Effect.Effect<void>
}

/**
 * Builds the keep-alive of an engine in the current scope. Closing the scope stops the watcher
 * and resolves the waits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  engine: TaskEngine,
  options: Options = {}
): Effect.Effect<KeepAlive, never, Scope.Scope> =>
  Effect.gen(function*() {
    const until = options.until ?? "idle"
    const poll = Duration.decode(options.pollInterval ?? "200 millis")
    const scope = yield* Effect.scope
    const state: { current: Deferred.Deferred<void> | undefined; dirty: boolean; closed: boolean } = {
      current: undefined,
      dirty: false,
      closed: false
    }

    const nothingPending: Effect.Effect<boolean> = until === "drained"
      ? Effect.succeed(true)
      : engine.list({ status: "pending", limit: 1 }).pipe(
        Effect.map((pending) => pending.length === 0),
        Effect.catchAll((error) => Effect.as(Effect.logWarning(`keep-alive: cannot look for pending tasks: ${error.message}`), false))
      )

    /** Whether the watcher may stop now: idle, and no submit since it last looked. */
    const settle = (idle: boolean) =>
      Effect.sync(() => {
        if (idle && !state.dirty) {
          state.current = undefined
          return true
        }
        state.dirty = false
        return false
      })

    const watch = (done: Deferred.Deferred<void>): Effect.Effect<void> =>
      Effect.zipRight(engine.drain, nothingPending).pipe(
        Effect.flatMap((idle) =>
          Effect.flatMap(settle(idle), (stop) =>
            stop
              ? Deferred.succeed(done, undefined)
              : Effect.zipRight(idle ? Effect.void : Effect.sleep(poll), watch(done)))
        ),
        Effect.asVoid
      )

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        state.closed = true
        if (state.current !== undefined) Deferred.unsafeDone(state.current, Effect.void)
        state.current = undefined
      })
    )

    const join = Effect.fiberIdWith((fiberId) =>
      Effect.sync(() => {
        if (state.closed) return undefined
        state.dirty = true
        if (state.current !== undefined) return { done: state.current, start: false }
        const done = Deferred.unsafeMake<void>(fiberId)
        state.current = done
        return { done, start: true }
      })
    )

    const register = Effect.flatMap(Effect.serviceOption(WaitUntil), (waitUntil) => {
      if (Option.isNone(waitUntil)) return Effect.void
      return Effect.flatMap(join, (joined) => {
        if (joined === undefined) return Effect.void
        return Effect.zipRight(
          joined.start ? Effect.forkIn(watch(joined.done), scope) : Effect.void,
          waitUntil.value.waitUntil(Deferred.await(joined.done))
        )
      })
    })
    return { register }
  })
