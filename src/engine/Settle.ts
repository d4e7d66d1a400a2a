/**
 * The settle step: turn an attempt's `Exit` into the record's next state, through the store.
 *
 * - success: `completed` with the encoded result;
 * - a typed failure or `TaskTimeout`: `pending` again at `now + backoff` while the task's
 *   schedule (and `retryWhile`) allow, else `failed`;
 * - a defect, or a payload that no longer decodes: `failed` at once (defects are not retried);
 * - interrupted by `cancel`: `cancelled`; by shutdown: `pending` again now (released);
 * - lease lost (another instance took the task over): nothing is written.
 *
 * Then metrics, error reports, awaiters and `drain` are told.
 *
 * @since 0.1.0
 * @internal
 */
import { Cause, Duration, Effect, Either, Exit, Option, Predicate, Schema } from "effect"
import { PayloadInvalid, TaskTimeout } from "../services/TaskError.js"
import type { MetricEvent } from "../services/TaskMetrics.js"
import type { TaskErrorInfo } from "../services/TaskRecord.js"
import type { Settlement } from "../services/TaskStore.js"
import { redact } from "./Codec.js"
import type { Engine } from "./EngineState.js"
import { rearm, resolveWaiters, signalSettled, wakeWorkers } from "./EngineState.js"
import type { Attempt } from "./Execute.js"
import { nextDelay } from "./Retry.js"
import * as StoreRetry from "./StoreRetry.js"

const encodeTimeout = Schema.encodeEither(TaskTimeout)

const messageOf = (error: unknown): string => {
  if (error instanceof Error) return error.message
  if (Predicate.hasProperty(error, "message") && typeof error.message === "string") return error.message
  return String(error)
}

const tagOf = (error: unknown): string =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string"
    ? error._tag
    : error instanceof Error
    ? error.name
    : "Error"

/** The stored form of a typed failure. @internal */
export const failureInfo = (attempt: Attempt, error: unknown, cause: Cause.Cause<unknown>): TaskErrorInfo => {
  const encoded = error instanceof TaskTimeout || error instanceof PayloadInvalid
    ? encodeTimeoutOrPayload(error)
    : attempt.registered.codecs.failure.encode(error)
  const info: TaskErrorInfo = { tag: tagOf(error), message: messageOf(error), cause: Cause.pretty(cause) }
  return Either.isRight(encoded) ? { ...info, failure: encoded.right } : info
}

const encodePayloadInvalid = Schema.encodeEither(PayloadInvalid)
const encodeTimeoutOrPayload = (error: TaskTimeout | PayloadInvalid): Either.Either<unknown, unknown> =>
  error instanceof TaskTimeout ? encodeTimeout(error) : encodePayloadInvalid(error)

/** The stored form of a defect. @internal */
export const defectInfo = (cause: Cause.Cause<unknown>): TaskErrorInfo => {
  const defect = Cause.squash(cause)
  return { tag: "Defect", message: messageOf(defect), cause: Cause.pretty(cause) }
}

const reportError = (engine: Engine, attempt: Attempt, error: TaskErrorInfo, final: boolean): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.sync(() => engine.clock.unsafeCurrentTimeMillis()),
    (now) =>
      engine.reporter.report({
        taskId: attempt.record.id,
        error: error.message,
        context: {
          task: attempt.record.name,
          attempt: attempt.record.attempt,
          final,
          tag: error.tag,
          cause: error.cause,
          payload: redact(attempt.payload)
        },
        timestamp: new Date(now)
      })
  )

/**
 * Writes the settlement, then (in one synchronous step) does the engine's bookkeeping and records
 * the metric event; a report, where one is due, follows.
 */
const write = (
  engine: Engine,
  attempt: Attempt,
  settlement: Settlement,
  event: MetricEvent,
  value: number,
  report?: { readonly error: TaskErrorInfo; readonly final: boolean }
): Effect.Effect<void> => {
  const written = StoreRetry.untilDoneThen(
    engine.store.settle(attempt.record.id, engine.state.owner, settlement),
    "settle",
    (settled) => {
      const state = engine.state
      state.running.delete(attempt.record.id)
      engine.metrics.record(attempt.record.name, event, value)
      if (Option.isSome(settled)) {
        const record = settled.value
        if (record.status === "pending") {
          if (record.runAt.getTime() <= engine.clock.unsafeCurrentTimeMillis()) wakeWorkers(state, 1)
          else rearm(state)
        } else {
          resolveWaiters(state, record)
        }
      }
      signalSettled(state)
      return Effect.void
    }
  )
  return report === undefined ? written : Effect.zipRight(written, reportError(engine, attempt, report.error, report.final))
}

/** Settles a finished attempt. @internal */
export const settle = (engine: Engine, attempt: Attempt): Effect.Effect<void> => {
  const { exit, record, registered, running } = attempt
  const now = engine.clock.unsafeCurrentTimeMillis()
  const duration = now - running.startedMillis
  if (running.stop === "lost") {
    engine.state.running.delete(record.id)
    signalSettled(engine.state)
    return Effect.logWarning(`task ${record.name} ${record.id}: lease lost to another instance; not settled here`)
  }
  if (Exit.isSuccess(exit)) {
    const encoded = registered.codecs.success.encode(exit.value)
    if (Either.isRight(encoded)) {
      return write(engine, attempt, { _tag: "Completed", result: encoded.right }, "completed", duration)
    }
    const error = defectInfo(Cause.die(encoded.left))
    return write(engine, attempt, { _tag: "Failed", error }, "failed", duration, { error, final: true })
  }
  const cause = exit.cause
  if (running.stop === "cancel" || (running.stop === undefined && Cause.isInterruptedOnly(cause))) {
    return write(engine, attempt, { _tag: "Cancelled" }, "cancelled", 1)
  }
  if (running.stop === "shutdown") {
    return write(engine, attempt, { _tag: "Released" }, "released", 1)
  }
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) {
    const error = defectInfo(cause)
    return write(engine, attempt, { _tag: "Failed", error }, "failed", duration, { error, final: true })
  }
  const typed = failure.value
  const error = failureInfo(attempt, typed, cause)
  const definition = registered.definition
  const retryable = !(typed instanceof PayloadInvalid) &&
    (definition.retryWhile === undefined || definition.retryWhile(typed as never))
  if (typed instanceof TaskTimeout) engine.metrics.record(record.name, "timedOut", 1)
  const delay = retryable ? nextDelay(definition.retry, record.attempt, typed as never, now) : Effect.succeedNone
  return Effect.flatMap(delay, (next) =>
    Option.isNone(next)
      ? write(engine, attempt, { _tag: "Failed", error }, "failed", duration, { error, final: true })
      : write(
        engine,
        attempt,
        { _tag: "Retry", runAt: new Date(now + Duration.toMillis(next.value)), error },
        "retried",
        duration,
        engine.settings.errorReports === "attempts" ? { error, final: false } : undefined
      ))
}
