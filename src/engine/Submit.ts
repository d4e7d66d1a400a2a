/**
 * Submitting: the checks (`Validate`), the encoded tasks, the room a bounded engine waits for, the
 * store's insert and what follows it (workers woken or the timer re-armed, metrics). Owns nothing:
 * it reads the engine's settings and asks the state's owners (`EngineState`) to wake and re-arm.
 *
 * @since 0.2.0
 * @internal
 */
import { Duration, Effect, Either } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import { DuplicateTask, EngineClosed, OptionInvalid, PayloadInvalid, QueueFull, UnknownTask } from "../services/TaskError.js"
import type { NewTask, TaskId } from "../services/TaskRecord.js"
import type { InsertResult } from "../services/TaskStore.js"
import { firstIssue } from "./Codec.js"
import type { Engine } from "./EngineState.js"
import * as EngineState from "./EngineState.js"
import * as StoreRetry from "./StoreRetry.js"
import type * as Task from "./Task.js"
import type { SubmitError, SubmitOptions } from "./TaskEngine.js"
import * as Validate from "./Validate.js"

/** The options of a submit that gives none (a default `{}` was an object per submit). @internal */
export const noOptions: SubmitOptions = Object.freeze({})

/** The engine's submit operations. @internal */
export const make = (engine: Engine, nextId: () => TaskId, instanceId: string) => {
  const { clock, local, metrics, settings, state, store } = engine
  const waitForRoom = (name: string, whenFull: "fail" | "wait"): Effect.Effect<void, QueueFull | StoreUnavailable> => {
    if (settings.maxQueued === Number.POSITIVE_INFINITY) return Effect.void
    const check: Effect.Effect<void, QueueFull | StoreUnavailable> = Effect.suspend(() => {
      // taken before the count: a room signal while the count is on its way is not missed
      const generation = state.roomGeneration
      return Effect.flatMap(store.pendingCount, (pending) => {
        if (pending < settings.maxQueued) return Effect.void
        if (whenFull === "fail") return Effect.fail(new QueueFull({ task: name, maxQueued: settings.maxQueued }))
        const room = EngineState.awaitRoom(state, generation)
        // a shared store's other processes make room unseen: look again every pollInterval
        const wait = store.shared ? Effect.raceFirst(room, Effect.sleep(Duration.millis(settings.pollMillis))) : room
        return Effect.zipRight(wait, check)
      })
    })
    return check
  }

  const firstId = (results: ReadonlyArray<InsertResult>): TaskId => results[0]!.id
  const allIds = (results: ReadonlyArray<InsertResult>): ReadonlyArray<TaskId> => results.map((result) => result.id)

  // One `Effect.suspend` does the checks and builds the tasks; the store's answer and the
  // bookkeeping after it are one more continuation. The whole submit is four Effect steps, as
  // each step costs the runtime an allocation and a dispatch (measured: a `map`, a `catchAll`
  // and a `flatMap` fewer took a no-op submit alone from 6.3-7.1 to 5.6-5.9 us of CPU).
  const insert = <A>(
    definition: Task.Any,
    payloads: ReadonlyArray<unknown>,
    options: SubmitOptions,
    encoded: boolean,
    answer: (results: ReadonlyArray<InsertResult>) => A
  ): Effect.Effect<A, SubmitError> =>
    Effect.suspend((): Effect.Effect<A, SubmitError> => {
      if (state.closing) return Effect.fail(new EngineClosed())
      const codecs = EngineState.codecsOf(definition)
      const priority = options === noOptions ? 0 : Validate.priority(options.priority)
      if (typeof priority !== "number") return Effect.fail(priority)
      const now = clock.unsafeCurrentTimeMillis()
      const runAtMillis = options === noOptions ? now : Validate.runAtMillis(now, options.runAt, options.delay)
      if (typeof runAtMillis !== "number") return Effect.fail(runAtMillis)
      const runAt = new Date(runAtMillis)
      const idempotencyKey = options.idempotencyKey ?? null
      if (idempotencyKey !== null) {
        const invalid = Validate.text("idempotencyKey", idempotencyKey)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (payloads.length > 1) {
          return Effect.fail(
            new OptionInvalid({
              option: "idempotencyKey",
              value: Validate.shown(idempotencyKey),
              issue: "names one task; give it per submit, not to submitMany"
            })
          )
        }
      }
      const tasks: Array<NewTask> = []
      for (const payload of payloads) {
        // encoding validates a typed payload; decoding validates (and normalises) an encoded one
        const checked = encoded
          ? Either.flatMap(codecs.payload.decode(payload), codecs.payload.encode)
          : codecs.payload.encode(payload)
        if (Either.isLeft(checked)) {
          const { issue, path } = firstIssue(checked.left)
          return Effect.fail(new PayloadInvalid({ task: definition.name, path, issue }))
        }
        const unstorable = Validate.payloadIssue(checked.right)
        if (unstorable !== undefined) {
          return Effect.fail(new PayloadInvalid({ task: definition.name, ...unstorable }))
        }
        tasks.push({ id: nextId(), name: definition.name, payload: checked.right, priority, runAt, idempotencyKey })
      }
      const inserted = (results: ReadonlyArray<InsertResult>): Effect.Effect<A, DuplicateTask> => {
          let inserted = 0
          for (const result of results) {
            if (result.inserted) inserted++
          }
          const first = results[0]
          if (inserted === 0 && first !== undefined && options.onDuplicate === "fail" && idempotencyKey !== null) {
            return Effect.fail(new DuplicateTask({ id: first.id, idempotencyKey }))
          }
          if (inserted > 0) {
            if (runAtMillis <= now) EngineState.wakeWorkers(state, inserted)
            else EngineState.rearm(state)
            metrics.record(definition.name, "submitted", inserted)
          }
          return Effect.succeed(answer(results))
        }
      // a store in this thread inserts at once, without an Effect (after the room is found)
      const stored = local === undefined
        ? StoreRetry.brieflyThen(store.insert(tasks), inserted)
        : settings.maxQueued === Number.POSITIVE_INFINITY
        ? inserted(local.insert(tasks, instanceId))
        : Effect.suspend(() => inserted(local.insert(tasks, instanceId)))
      return settings.maxQueued === Number.POSITIVE_INFINITY
        ? stored
        : Effect.zipRight(waitForRoom(definition.name, options.whenFull ?? settings.whenFull), stored)
    })

  const submit = <D extends Task.Any>(task: D, payload: Task.Payload<D>, options: SubmitOptions = noOptions) =>
    insert(task, [payload], options, false, firstId)

  const submitMany = <D extends Task.Any>(
    task: D,
    payloads: Iterable<Task.Payload<D>>,
    options: SubmitOptions = noOptions
  ) => insert(task, Array.from(payloads), options, false, allIds)

  const submitUnknown = (name: string, payload: unknown, options: SubmitOptions = noOptions) =>
    Effect.suspend((): Effect.Effect<TaskId, SubmitError | UnknownTask> => {
      const definition = state.definitions.get(name)
      if (definition === undefined) return Effect.fail(new UnknownTask({ name }))
      return insert(definition, [payload], options, true, firstId)
    })
  return { submit, submitMany, submitUnknown }
}
