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
import type { StoreUnavailable } from "../services/TaskError.js"
import { PayloadInvalid, TaskTimeout } from "../services/TaskError.js"
import type { MetricEvent } from "../services/TaskMetrics.js"
import type { TaskErrorInfo, TaskRecord } from "../services/TaskRecord.js"
import type { Settlement } from "../services/TaskStore.js"
import { redact } from "./Codec.js"
import type { Engine } from "./EngineState.js"
import { rearm, removeRunning, resolveWaiters, signalSettled, wakeWorkers } from "./EngineState.js"
import type { Attempt } from "./Execute.js"
import { nextDelay } from "./Retry.js"
import * as StoreRetry from "./StoreRetry.js"
import * as Validate from "./Validate.js"

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
  const info: TaskErrorInfo = {
    tag: Validate.storable(tagOf(error)),
    message: Validate.storable(messageOf(error)),
    cause: Validate.storable(Cause.pretty(cause))
  }
  return Either.isRight(encoded) ? { ...info, failure: Validate.storableValue(encoded.right) } : info
}

const encodePayloadInvalid = Schema.encodeEither(PayloadInvalid)
const encodeTimeoutOrPayload = (error: TaskTimeout | PayloadInvalid): Either.Either<unknown, unknown> =>
  error instanceof TaskTimeout ? encodeTimeout(error) : encodePayloadInvalid(error)

/** The stored form of a defect. @internal */
export const defectInfo = (cause: Cause.Cause<unknown>): TaskErrorInfo => {
  const defect = Cause.squash(cause)
  return { tag: "Defect", message: Validate.storable(messageOf(defect)), cause: Validate.storable(Cause.pretty(cause)) }
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

/** What an attempt's end writes: the settlement, its metric event, and the report due, if any. @internal */
export interface Decision {
  readonly settlement: Settlement
  readonly event: MetricEvent
  readonly value: number
  readonly report: { readonly error: TaskErrorInfo; readonly final: boolean } | undefined
  /** The attempt timed out (`TaskTimeout`): counted once the settlement lands. */
  readonly timedOut: boolean
}

const decision = (
  settlement: Settlement,
  event: MetricEvent,
  value: number,
  report?: { readonly error: TaskErrorInfo; readonly final: boolean },
  timedOut = false
): Decision => ({ settlement, event, value, report, timedOut })

/**
 * The engine's bookkeeping once a settlement has landed, in one synchronous step: the attempt
 * leaves `running`, the metric event is recorded (unless `recorded`: a settlement written behind
 * records it when the attempt ends, so the running gauge never counts more than the workers),
 * awaiters get a terminal record, a task pending again wakes a worker or the timer, and `drain`
 * is told. @internal
 */
export const apply = (
  engine: Engine,
  attempt: Attempt,
  decided: Decision,
  settled: Option.Option<TaskRecord>,
  recorded = false
): void => {
  if (Option.isNone(settled)) return applyOutcome(engine, attempt, decided, undefined, undefined, recorded)
  const record = settled.value
  const outcome = record.status === "pending" ? record.runAt.getTime() : Number.NEGATIVE_INFINITY
  applyOutcome(engine, attempt, decided, outcome, record, recorded)
}

/**
 * `apply` from what a local store's `settle` answered (`LocalTaskStore.settle`): the terminal
 * record is read only when someone awaits it. @internal
 */
export const applyOutcome = (
  engine: Engine,
  attempt: Attempt,
  decided: Decision,
  outcome: number | undefined,
  record: TaskRecord | undefined,
  recorded: boolean
): void => {
  const state = engine.state
  const id = attempt.record.id
  removeRunning(state, id)
  if (!recorded) engine.metrics.record(attempt.record.name, decided.event, decided.value)
  if (decided.timedOut) engine.metrics.record(attempt.record.name, "timedOut", 1)
  if (outcome !== undefined) {
    if (outcome !== Number.NEGATIVE_INFINITY) {
      if (outcome <= engine.clock.unsafeCurrentTimeMillis()) wakeWorkers(state, 1)
      else rearm(state)
    } else if (state.waiters.has(id)) {
      const terminal = record ?? engine.local?.get(id)
      if (terminal !== undefined) resolveWaiters(state, terminal)
    }
  }
  signalSettled(state)
}

/** The error report a decision calls for, after its settlement landed. @internal */
export const report = (engine: Engine, attempt: Attempt, decided: Decision): Effect.Effect<void> =>
  decided.report === undefined
    ? Effect.void
    : reportError(engine, attempt, decided.report.error, decided.report.final)

/**
 * What is written instead of a settlement the store refused for good (`StoreUnavailable.permanent`):
 * the task fails, saying why, rather than its settlement being retried for ever. @internal
 */
export const refused = (decided: Decision, error: StoreUnavailable): Decision => {
  const info: TaskErrorInfo = {
    tag: "StoreRefused",
    message: Validate.storable(`the store refused this task's ${decided.settlement._tag} settlement: ${error.reason}`),
    cause: Validate.storable(error.message)
  }
  return decision({ _tag: "Failed", error: info }, "failed", decided.value, { error: info, final: true })
}

/**
 * Writes the settlement through the store (retried until it lands; refused for good, a failure
 * is written instead), then `apply` and `report`. @internal
 */
export const write = (engine: Engine, attempt: Attempt, decided: Decision, recorded = false): Effect.Effect<void> => {
  const call = (d: Decision) => engine.store.settle(attempt.record.id, engine.state.owner, d.settlement)
  const landed = (d: Decision) => (settled: Option.Option<TaskRecord>) => {
    apply(engine, attempt, d, settled, recorded)
    return report(engine, attempt, d)
  }
  return Effect.matchEffect(call(decided), {
    onFailure: (error) => {
      const next = error.permanent ? refused(decided, error) : decided
      return Effect.zipRight(
        Effect.logWarning(`store unavailable (settle), retrying: ${error.reason}`),
        StoreRetry.untilDoneThen(call(next), "settle", landed(next), engine.state)
      )
    },
    onSuccess: landed(decided)
  })
}

/**
 * Decides how a finished attempt settles: at once, or (a retry's backoff replays the schedule;
 * a lost lease logs) as an Effect, whose `undefined` is an attempt whose lease was lost, not
 * settled here (its bookkeeping is done when the Effect runs). Most attempts decide at once,
 * without an Effect step. Deciding changes nothing: the engine's state and metrics change when
 * the settlement lands (`apply`).
 * @internal
 */
export const decide = (engine: Engine, attempt: Attempt): Decision | Effect.Effect<Decision | undefined> => {
  const { exit, record, registered, running } = attempt
  const now = engine.clock.unsafeCurrentTimeMillis()
  const duration = now - running.startedMillis
  if (running.stop === "lost") {
    // nothing lands: the bookkeeping is done when this Effect runs, in `settle`
    return Effect.as(
      Effect.zipRight(
        Effect.sync(() => {
          removeRunning(engine.state, record.id)
          signalSettled(engine.state)
        }),
        Effect.logWarning(`task ${record.name} ${record.id}: lease lost to another instance; not settled here`)
      ),
      undefined
    )
  }
  if (Exit.isSuccess(exit)) {
    const encoded = registered.codecs.success.encode(exit.value)
    if (Either.isRight(encoded)) {
      const unstorable = Validate.payloadIssue(encoded.right)
      if (unstorable === undefined) return decision({ _tag: "Completed", result: encoded.right }, "completed", duration)
      const error = defectInfo(Cause.die(new Error(`the result cannot be stored: at ${unstorable.path}, ${unstorable.issue}`)))
      return decision({ _tag: "Failed", error }, "failed", duration, { error, final: true })
    }
    const error = defectInfo(Cause.die(encoded.left))
    return decision({ _tag: "Failed", error }, "failed", duration, { error, final: true })
  }
  const cause = exit.cause
  if (running.stop === "cancel" || (running.stop === undefined && Cause.isInterruptedOnly(cause))) {
    return decision({ _tag: "Cancelled" }, "cancelled", 1)
  }
  if (running.stop === "shutdown") {
    return decision({ _tag: "Released" }, "released", 1)
  }
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) {
    const error = defectInfo(cause)
    return decision({ _tag: "Failed", error }, "failed", duration, { error, final: true })
  }
  const typed = failure.value
  const error = failureInfo(attempt, typed, cause)
  const definition = registered.definition
  const retryable = !(typed instanceof PayloadInvalid) &&
    (definition.retryWhile === undefined || definition.retryWhile(typed as never))
  const timedOut = typed instanceof TaskTimeout
  const delay = retryable ? nextDelay(definition.retry, record.attempt, typed as never, now) : Effect.succeedNone
  return Effect.map(delay, (next) =>
    Option.isNone(next)
      ? decision({ _tag: "Failed", error }, "failed", duration, { error, final: true }, timedOut)
      : decision(
        { _tag: "Retry", runAt: new Date(now + Duration.toMillis(next.value)), error },
        "retried",
        duration,
        engine.settings.errorReports === "attempts" ? { error, final: false } : undefined,
        timedOut
      ))
}

/** Settles a finished attempt as `decide` decided: writes, and does the bookkeeping. @internal */
export const settle = (
  engine: Engine,
  attempt: Attempt,
  decided: Decision | Effect.Effect<Decision | undefined>
): Effect.Effect<void> =>
  Effect.isEffect(decided)
    ? Effect.flatMap(decided, (d) => (d === undefined ? Effect.void : write(engine, attempt, d)))
    : write(engine, attempt, decided)
