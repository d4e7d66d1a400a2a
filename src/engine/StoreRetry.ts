/**
 * How the engine treats a store that fails (`StoreUnavailable`): writes that settle a task are
 * retried until they go through (a settlement is never dropped), with a backoff from 100 ms up to
 * 5 s, logging each failure; reads made for a caller are retried briefly, then fail. A permanent
 * refusal (`StoreUnavailable.permanent`: SQLSTATE classes 22, 23, 42) is never retried by `briefly`;
 * a settlement refused so is written as a failure instead (see `Settle`).
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
// The `...Then` forms also take the caller's next step, so that the store's answer and what is
// done with it cost the runtime one continuation (`matchEffect`) rather than a `catchAll` and a
// `flatMap`: each Effect step is an allocation and a dispatch, and a no-op task takes a few dozen.

const logged = <A>(effect: Effect.Effect<A, StoreUnavailable>, what: string): Effect.Effect<A, StoreUnavailable> =>
  Effect.tapError(effect, (error) => Effect.logWarning(`store unavailable (${what}), retrying: ${error.reason}`))

/** Retries until the store answers. @internal */
export const untilDone = <A>(
  effect: Effect.Effect<A, StoreUnavailable>,
  what: string
): Effect.Effect<A> => untilDoneThen(effect, what, Effect.succeed)

/** Retries until the store answers, then goes on with `onSuccess`. @internal */
export const untilDoneThen = <A, B, E, R>(
  effect: Effect.Effect<A, StoreUnavailable>,
  what: string,
  onSuccess: (a: A) => Effect.Effect<B, E, R>
): Effect.Effect<B, E, R> =>
  Effect.matchEffect(effect, {
    onFailure: (error) =>
      Effect.zipRight(
        Effect.logWarning(`store unavailable (${what}), retrying: ${error.reason}`),
        Effect.flatMap(Effect.orDie(Effect.retry(logged(effect, what), backoff)), onSuccess)
      ),
    onSuccess
  })

const transient = (error: StoreUnavailable): boolean => !error.permanent

/** Retries a few times (about 1.5 s in all), then fails; a permanent refusal fails at once. @internal */
export const briefly = <A>(effect: Effect.Effect<A, StoreUnavailable>): Effect.Effect<A, StoreUnavailable> =>
  Effect.catchAll(
    effect,
    (error) => error.permanent ? Effect.fail(error) : Effect.retry(effect, { schedule: fewTimes, while: transient })
  )

/** Retries a few times (about 1.5 s in all), then fails; on an answer goes on with `onSuccess`. @internal */
export const brieflyThen = <A, B, E, R>(
  effect: Effect.Effect<A, StoreUnavailable>,
  onSuccess: (a: A) => Effect.Effect<B, E, R>
): Effect.Effect<B, E | StoreUnavailable, R> =>
  Effect.matchEffect(effect, {
    onFailure: (error) =>
      error.permanent
        ? Effect.fail(error)
        : Effect.flatMap(Effect.retry(effect, { schedule: fewTimes, while: transient }), onSuccess),
    onSuccess
  })
