/**
 * How the engine treats a store that fails (`StoreUnavailable`): writes that settle a task are
 * retried until they go through (a settlement is never dropped), with a backoff from 100 ms up to
 * 5 s cut short when another store call of the engine succeeds (`Answers`), logging each failure;
 * reads made for a caller are retried briefly, then fail. A permanent refusal
 * (`StoreUnavailable.permanent`: SQLSTATE classes 22, 23, 42) is never retried by `briefly`; a
 * settlement refused so is written as a failure instead (see `Settle`).
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

/**
 * News that the store answers again: an engine counts the store calls that succeeded (claims,
 * heartbeats, polls, settlements) and calls back the retries waiting for one. @internal
 */
export interface Answers {
  /** How many store calls have succeeded. */
  answers: number
  /** The callbacks of retries waiting for the next success. */
  readonly answered: Array<() => void>
}

/** A store call succeeded: the retries waiting for one go now. @internal */
export const answered = (answers: Answers): void => {
  answers.answers++
  if (answers.answered.length === 0) return
  for (const wake of answers.answered.splice(0)) wake()
}

/** The least pause between two tries of one retry, however soon the store answers. */
const leastPauseMillis = 50

/**
 * The pause after a failed try: the backoff's delay, or less once the store answered another
 * call since the failure (after `leastPauseMillis` at least).
 */
const pause = (answers: Answers, delayMillis: number): Effect.Effect<void> => {
  const before = answers.answers
  const least = Math.min(delayMillis, leastPauseMillis)
  const news = Effect.zipRight(
    Effect.sleep(Duration.millis(least)),
    Effect.async<void>((resume) => {
      if (answers.answers !== before) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      answers.answered.push(wake)
      return Effect.sync(() => {
        const i = answers.answered.indexOf(wake)
        if (i >= 0) answers.answered.splice(i, 1)
      })
    })
  )
  return delayMillis <= least ? Effect.sleep(Duration.millis(delayMillis)) : Effect.raceFirst(Effect.sleep(Duration.millis(delayMillis)), news)
}

/** The backoff of `backoff`, by hand, each pause cut short when the store answers meanwhile. */
const retryAnswered = <A>(
  effect: Effect.Effect<A, StoreUnavailable>,
  what: string,
  answers: Answers
): Effect.Effect<A> => {
  const loop = (delayMillis: number): Effect.Effect<A> =>
    Effect.zipRight(
      pause(answers, delayMillis),
      Effect.matchEffect(effect, {
        onFailure: (error) =>
          Effect.zipRight(
            Effect.logWarning(`store unavailable (${what}), retrying: ${error.reason}`),
            loop(Math.min(delayMillis * 2, 5_000))
          ),
        onSuccess: (a) => {
          answered(answers)
          return Effect.succeed(a)
        }
      })
    )
  return loop(100)
}

/** Retries until the store answers. @internal */
export const untilDone = <A>(
  effect: Effect.Effect<A, StoreUnavailable>,
  what: string,
  answers?: Answers
): Effect.Effect<A> => untilDoneThen(effect, what, Effect.succeed, answers)

/**
 * Retries until the store answers, then goes on with `onSuccess`. With `answers`, a retry waiting
 * for its backoff goes as soon as another call to the store succeeds: after an outage longer than
 * a lease, claims (which retry every poll) came back seconds before settlements did, and tasks
 * finished here ran again elsewhere. @internal
 */
export const untilDoneThen = <A, B, E, R>(
  effect: Effect.Effect<A, StoreUnavailable>,
  what: string,
  onSuccess: (a: A) => Effect.Effect<B, E, R>,
  answers?: Answers
): Effect.Effect<B, E, R> =>
  Effect.matchEffect(effect, {
    onFailure: (error) =>
      Effect.zipRight(
        Effect.logWarning(`store unavailable (${what}), retrying: ${error.reason}`),
        Effect.flatMap(
          answers === undefined
            ? Effect.orDie(Effect.retry(logged(effect, what), backoff))
            : retryAnswered(effect, what, answers),
          onSuccess
        )
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
