/**
 * Reading tasks: `get`, `list`, awaiting a terminal record (a waiter resolved by the engine's
 * settlements, with a poll of a shared store as a backstop), `watch`, `changes` and `drain`.
 * Waiters are registered in `EngineState.waiters`, which settlements resolve.
 *
 * @since 0.2.0
 * @internal
 */
import { Deferred, Duration, Effect, Either, Option, Schema, Stream } from "effect"
import type { OptionInvalid, StoreUnavailable } from "../services/TaskError.js"
import { TaskCancelled, TaskDefect, TaskNotFound, TaskTimeout } from "../services/TaskError.js"
import type { TaskFilter, TaskId, TaskRecord } from "../services/TaskRecord.js"
import { isTerminal } from "../services/TaskRecord.js"
import type { Engine } from "./EngineState.js"
import * as EngineState from "./EngineState.js"
import * as StoreRetry from "./StoreRetry.js"
import type * as Task from "./Task.js"
import * as Validate from "./Validate.js"

const decodeTimeout = Schema.decodeUnknownEither(TaskTimeout)

/** The typed outcome of a terminal record, decoded with the definition's Schemas. */
const outcomeOf = (
  definition: Task.Any,
  record: TaskRecord
): Effect.Effect<unknown, unknown> => {
  const codecs = EngineState.codecsOf(definition)
  switch (record.status) {
    case "completed": {
      const decoded = codecs.success.decode(record.result)
      return Either.isRight(decoded)
        ? Effect.succeed(decoded.right)
        : Effect.die(new TaskDefect({ id: record.id, cause: `stored result does not decode: ${decoded.left.message}` }))
    }
    case "cancelled":
      return Effect.fail(new TaskCancelled({ id: record.id }))
    default: {
      const error = record.error
      if (error !== null && error.failure !== undefined) {
        if (error.tag === "TaskTimeout") {
          const timeout = decodeTimeout(error.failure)
          if (Either.isRight(timeout)) return Effect.fail(timeout.right)
        }
        const decoded = codecs.failure.decode(error.failure)
        if (Either.isRight(decoded)) return Effect.fail(decoded.right)
      }
      return Effect.die(new TaskDefect({ id: record.id, cause: error === null ? "unknown failure" : error.cause }))
    }
  }
}

/** The engine's queries. @internal */
export const make = (engine: Engine) => {
  const { clock, settings, state, store } = engine
  // an id no store can hold names no task: answered here, the same on every store
  const get = (id: string): Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable> =>
    Validate.textIssue(id) === undefined ? StoreRetry.briefly(store.get(id as TaskId)) : Effect.succeedNone

  const notFound = (id: string) => Effect.fail(new TaskNotFound({ id }))

  /** The terminal record of a task, waiting for it; polls a shared store as a backstop. */
  const terminal = (id: string): Effect.Effect<TaskRecord, TaskNotFound | StoreUnavailable> =>
    Effect.flatMap(Deferred.make<TaskRecord>(), (done) => {
      const forget = EngineState.addWaiter(state, id, done)
      const check: Effect.Effect<Option.Option<TaskRecord>, TaskNotFound | StoreUnavailable> = Effect.flatMap(
        get(id),
        Option.match({
          onNone: () => notFound(id),
          onSome: (record) => Effect.succeed(isTerminal(record.status) ? Option.some(record) : Option.none())
        })
      )
      const wait: Effect.Effect<TaskRecord, TaskNotFound | StoreUnavailable> = store.shared
        ? Effect.raceFirst(
          Deferred.await(done),
          Effect.flatMap(
            Effect.repeat(Effect.zipRight(Effect.sleep(Duration.millis(settings.pollMillis)), check), {
              until: Option.isSome
            }),
            (found) => Option.isSome(found) ? Effect.succeed(found.value) : Effect.never
          )
        )
        : Deferred.await(done)
      return Effect.flatMap(check, (found) => Option.isSome(found) ? Effect.succeed(found.value) : wait).pipe(
        Effect.ensuring(forget)
      )
    })

  const awaitTask = <D extends Task.Any>(task: D, id: string) =>
    Effect.flatMap(terminal(id), (record) => outcomeOf(task, record)) as Effect.Effect<
      Task.Success<D>,
      Task.Failure<D> | TaskTimeout | TaskCancelled | TaskNotFound | StoreUnavailable
    >

  const list = (filter: TaskFilter = {}): Effect.Effect<ReadonlyArray<TaskRecord>, OptionInvalid | StoreUnavailable> => {
    const invalid = Validate.filter(filter)
    return invalid === undefined ? StoreRetry.briefly(store.list(filter)) : Effect.fail(invalid)
  }

  const changes: Stream.Stream<TaskRecord> = Stream.unwrapScoped(store.subscribe)

  const watch = (id: string): Stream.Stream<TaskRecord, TaskNotFound | StoreUnavailable> =>
    Stream.unwrapScoped(
      Effect.gen(function*() {
        const updates = yield* store.subscribe
        const current = yield* get(id)
        if (Option.isNone(current)) return yield* notFound(id)
        const first = current.value
        if (isTerminal(first.status)) return Stream.make(first)
        const later = updates.pipe(
          Stream.filter((record) => record.id === id && record.updatedAt.getTime() >= first.updatedAt.getTime()),
          Stream.takeUntil((record) => isTerminal(record.status))
        )
        return Stream.concat(Stream.make(first), later)
      })
    )

  const drain: Effect.Effect<void> = Effect.flatMap(Deferred.make<void>(), (settled) =>
    Effect.suspend(() => {
      const signalled = EngineState.awaitSettled(state, settled)
      const idle = state.running.size === 0 && state.claiming === 0
      const check = idle
        ? Effect.map(
          StoreRetry.untilDone(store.nextRunAt(state.names), "drain"),
          (next) => Option.isNone(next) || next.value.getTime() > clock.unsafeCurrentTimeMillis()
        )
        : Effect.succeed(false)
      return Effect.flatMap(check, (done) => (done ? Effect.void : Effect.zipRight(signalled, drain)))
    }))
  return { get, notFound, terminal, awaitTask, list, changes, watch, drain }
}
