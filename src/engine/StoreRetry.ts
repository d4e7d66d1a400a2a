/**
 * How the engine treats a store that fails (`StoreUnavailable`): writes that settle a task are
 * retried until they go through (a settlement is never dropped), with a backoff from 100 ms up to
 * 5 s, logging each failure; reads made for a caller are retried briefly, then fail.
 *
 * @since 0.1.0
 * @internal
 */
import { Duration, Effect, Schedule } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"

const backoff = Schedule.exponential(Duration.millis(100)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(5))))

const fewTimes = backoff.pipe(Schedule.intersect(Schedule.recurs(4)))

// The retry machinery is built only after a first failure: `Effect.retry` costs tens of
// microseconds per call, too much for the hot path where the store almost always answers.

/** Retries until the store answers. @internal */
export const untilDone = <A>(
  effect: Effect.Effect<A, StoreUnavailable>,
  what: string
): Effect.Effect<A> => {
  const logged = Effect.tapError(
    effect,
    (error) => Effect.logWarning(`store unavailable (${what}), retrying: ${error.reason}`)
  )
  return Effect.catchAll(logged, () => Effect.orDie(Effect.retry(logged, backoff)))
}

/** Retries a few times (about 1.5 s in all), then fails. @internal */
export const briefly = <A>(effect: Effect.Effect<A, StoreUnavailable>): Effect.Effect<A, StoreUnavailable> =>
  Effect.catchAll(effect, () => Effect.retry(effect, fewTimes))
