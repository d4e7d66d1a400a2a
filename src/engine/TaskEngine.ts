/**
 * The engine: the `TaskEngine` service that submits, inspects, awaits and cancels tasks, and the
 * layer that runs them. Building the layer starts the workers, the timer, the heartbeat, the
 * store listener and cleanup (see `Dispatcher`); closing its scope shuts down gracefully:
 * intake stops, running attempts get `shutdownTimeout` to finish, the rest are interrupted and
 * handed back to the store as `pending`. Nothing disappears.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Layer,
  Option,
  Schema,
  Scope,
  Stream
} from "effect"
import * as MemoryErrorReporter from "../layers/MemoryErrorReporter.js"
import * as MemoryTaskMetrics from "../layers/MemoryTaskMetrics.js"
import { ErrorReporter } from "../services/ErrorReporter.js"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { InsertResult } from "../services/TaskStore.js"
import {
  DuplicateTask,
  EngineClosed,
  OptionInvalid,
  PayloadInvalid,
  QueueFull,
  TaskCancelled,
  TaskDefect,
  TaskNotFound,
  TaskTimeout,
  UnknownTask
} from "../services/TaskError.js"
import type { MetricsSnapshot } from "../services/TaskMetrics.js"
import { TaskMetrics } from "../services/TaskMetrics.js"
import type { NewTask, TaskFilter, TaskId, TaskRecord } from "../services/TaskRecord.js"
import { isTerminal } from "../services/TaskRecord.js"
import { TaskStore } from "../services/TaskStore.js"
import * as Cleanup from "./Cleanup.js"
import { firstIssue } from "./Codec.js"
import * as Dispatcher from "./Dispatcher.js"
import type { Engine, Registered, Settings } from "./EngineState.js"
import * as EngineState from "./EngineState.js"
import * as StoreRetry from "./StoreRetry.js"
import * as Validate from "./Validate.js"
import type * as Task from "./Task.js"

/**
 * Options of one submit. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions {
  /** Run no earlier than this long from now. Default: at once. */
  readonly delay?: Duration.DurationInput | undefined
  /** Run no earlier than this time (wins over `delay`). */
  readonly runAt?: Date | undefined
  /**
   * An integer; higher runs first, FIFO within one priority. Default 0. Low priorities are not
   * starved: one level is worth `priorityAging` of waiting (one minute by default).
   */
  readonly priority?: number | undefined
  /** A second submit with the same key gives the first task's id (or `DuplicateTask`). */
  readonly idempotencyKey?: string | undefined
  /** What a repeated idempotency key does: `"return"` the existing id (default) or `"fail"`. */
  readonly onDuplicate?: "return" | "fail" | undefined
  /** When the backlog is at `maxQueued`: `"fail"` with `QueueFull`, or `"wait"` for room. Default: the engine's. */
  readonly whenFull?: "fail" | "wait" | undefined
}

/**
 * The errors `submit` can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type SubmitError =
  | PayloadInvalid
  | OptionInvalid
  | QueueFull
  | DuplicateTask
  | StoreUnavailable
  | EngineClosed

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskEngine {
  /** This instance's id, written to `lockedBy` of the tasks it runs. */
  readonly instanceId: string
  /** Validates the payload, stores the task and returns its id at once; the work runs in the background. */
  readonly submit: <D extends Task.Any>(
    task: D,
    payload: Task.Payload<D>,
    options?: SubmitOptions
  ) => Effect.Effect<TaskId, SubmitError>
  /** Submits many tasks of one definition in one store call; ids in the payloads' order. */
  readonly submitMany: <D extends Task.Any>(
    task: D,
    payloads: Iterable<Task.Payload<D>>,
    options?: SubmitOptions
  ) => Effect.Effect<ReadonlyArray<TaskId>, SubmitError>
  /**
   * Submits by task name with an encoded (JSON) payload, as the HTTP API does; the name must be
   * registered or declared (`definitions` option).
   */
  readonly submitUnknown: (
    name: string,
    payload: unknown,
    options?: SubmitOptions
  ) => Effect.Effect<TaskId, SubmitError | UnknownTask>
  /** The record of a task: status, attempt, progress, result, error, times. */
  readonly get: (id: string) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>
  /** Waits for the task to finish: its typed success, or its typed failure. */
  readonly await: <D extends Task.Any>(
    task: D,
    id: string
  ) => Effect.Effect<
    Task.Success<D>,
    Task.Failure<D> | TaskTimeout | TaskCancelled | TaskNotFound | StoreUnavailable
  >
  /** Cancels: interrupts a running attempt (its finalizers run) or withdraws a pending task. */
  readonly cancel: (id: string) => Effect.Effect<boolean, TaskNotFound | StoreUnavailable>
  /** Runs a failed or cancelled task again, from attempt 1; `false` when it had not ended so. */
  readonly retry: (id: string) => Effect.Effect<boolean, TaskNotFound | StoreUnavailable>
  /** Records matching the filter, newest first. */
  readonly list: (filter?: TaskFilter) => Effect.Effect<ReadonlyArray<TaskRecord>, OptionInvalid | StoreUnavailable>
  /** The task's record now, then each change, ending once it is terminal. */
  readonly watch: (id: string) => Stream.Stream<TaskRecord, TaskNotFound | StoreUnavailable>
  /** Every record change in the store (subscribed when the stream starts). */
  readonly changes: Stream.Stream<TaskRecord>
  /** Subscribes to record changes now: the stream sees every change after this effect, until the scope closes. */
  readonly subscribe: Effect.Effect<Stream.Stream<TaskRecord>, never, Scope.Scope>
  /** Completes when no task runs here and none this engine can run is pending and due. */
  readonly drain: Effect.Effect<void>
  /** Counters, gauges and durations per task name. */
  readonly metrics: Effect.Effect<MetricsSnapshot>
  /** Deletes finished tasks past their retention now; returns how many. */
  readonly cleanup: Effect.Effect<number, StoreUnavailable>
  /** The definitions this engine knows (with a handler or declared), by name. */
  readonly definitions: Effect.Effect<ReadonlyMap<string, Task.Any>>
  /** Registers a handler; used by `Definition.toLayer`. */
  readonly register: (handler: Task.Handler) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TaskEngine: Context.Tag<TaskEngine, TaskEngine> = Context.GenericTag<TaskEngine>(
  "effect-tasks/TaskEngine"
)

/**
 * Engine options. Every field is optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Attempts running at once in this engine [5, the guide's ResourceAwareTask]. */
  readonly maxConcurrent?: number | undefined
  /** The most tasks that may be pending in the store; `submit` then fails or waits [unbounded]. */
  readonly maxQueued?: number | undefined
  /** What `submit` does when the backlog is full: `"fail"` with `QueueFull`, or `"wait"` ["fail"]. */
  readonly whenFull?: "fail" | "wait" | undefined
  /** How long closing the scope waits for running attempts before interrupting them ["30 seconds"]. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** How long a claim holds a task before another instance may take it over ["30 seconds"]. */
  readonly leaseDuration?: Duration.DurationInput | undefined
  /** How often running tasks' leases are extended (keep it well under `leaseDuration`) ["10 seconds"]. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** How often an idle engine on a shared store looks for work it was not told about ["1 second"]. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** Scheduled cleanup of finished tasks, or `false` for none [every hour, 7 days' retention]. */
  readonly cleanup?: Cleanup.CleanupOptions | false | undefined
  /** Report only final failures, or every failed attempt ["final"]. */
  readonly errorReports?: "final" | "attempts" | undefined
  /** This instance's id, for `lockedBy` [a random one]. */
  readonly instanceId?: string | undefined
  /** Definitions this engine can submit by name without running them (producers) [none]. */
  readonly definitions?: ReadonlyArray<Task.Any> | undefined
  /**
   * Run each attempt in a span `effect-tasks.attempt <name>` with the task's id, name and attempt
   * [false: a span costs several times a no-op task's whole overhead; turn it on to export traces].
   */
  readonly tracing?: boolean | undefined
}

const positiveInt = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`TaskEngine: ${name} must be a positive integer, got ${value}`)
  }
  return value
}

const millis = (name: string, input: Duration.DurationInput | undefined, fallback: string): number => {
  const value = Duration.toMillis(Duration.decode(input ?? (fallback as Duration.DurationInput)))
  if (!(value > 0)) throw new TypeError(`TaskEngine: ${name} must be a positive duration`)
  return value
}

const settingsOf = (options: Options): Settings => ({
  maxConcurrent: positiveInt("maxConcurrent", options.maxConcurrent ?? 5),
  maxQueued: options.maxQueued === undefined ? Number.POSITIVE_INFINITY : positiveInt("maxQueued", options.maxQueued),
  whenFull: options.whenFull ?? "fail",
  leaseMillis: millis("leaseDuration", options.leaseDuration, "30 seconds"),
  heartbeatMillis: millis("heartbeatInterval", options.heartbeatInterval, "10 seconds"),
  pollMillis: millis("pollInterval", options.pollInterval, "1 second"),
  shutdownMillis: millis("shutdownTimeout", options.shutdownTimeout, "30 seconds"),
  errorReports: options.errorReports ?? "final"
})

const randomHex = (bytes: number): string => {
  const buffer = new Uint8Array(bytes)
  // ids must be unique across processes even under TestRandom, so they come from the platform
  globalThis.crypto.getRandomValues(buffer)
  return Array.from(buffer, (b) => b.toString(16).padStart(2, "0")).join("")
}

/** The options of a submit that gives none (a default `{}` was an object per submit). */
const noOptions: SubmitOptions = Object.freeze({})

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

/**
 * Builds an engine in the current scope: requires a `TaskStore`; uses the `ErrorReporter` and
 * `TaskMetrics` in context, or in-memory ones.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<TaskEngine, never, TaskStore | import("effect").Scope.Scope> =>
  Effect.gen(function*() {
    const settings = settingsOf(options)
    const store = yield* TaskStore
    const metrics = yield* Effect.serviceOption(TaskMetrics).pipe(
      Effect.flatMap(Option.match({ onNone: () => MemoryTaskMetrics.make, onSome: Effect.succeed }))
    )
    const reporter = yield* Effect.serviceOption(ErrorReporter).pipe(
      Effect.flatMap(Option.match({ onNone: () => MemoryErrorReporter.make(), onSome: Effect.succeed }))
    )
    const clock = yield* Effect.clock
    // workers live in a scope of their own, closed after the graceful shutdown below
    const workerScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const instanceId = options.instanceId ?? `engine-${randomHex(6)}`
    const state = yield* EngineState.make(instanceId)
    const local = store.local !== undefined && store.local.serves(store) ? store.local : undefined
    const ahead = store.ahead !== undefined && store.ahead.serves(store) ? store.ahead : undefined
    const engine: Engine = { state, store, local, ahead, metrics, reporter, clock, settings }
    const cleanup = options.cleanup === false ? undefined : Cleanup.policy(options.cleanup ?? {})
    for (const definition of options.definitions ?? []) state.definitions.set(definition.name, definition)

    const tracing = options.tracing ?? false
    const idPrefix = randomHex(8)
    let idCounter = 0
    const nextId = (): TaskId => `${idPrefix}-${(idCounter++).toString(36)}` as TaskId

    // -- registration ----------------------------------------------------------------------
    const workerContext = yield* Effect.context<TaskStore>()
    let serviceContext: Context.Context<never> = Context.empty()
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
          if (serviceContext.unsafeMap.get(key) !== value) {
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
        state.handlers.set(definition.name, registered)
        state.definitions.set(definition.name, definition)
        state.names = Array.from(state.handlers.keys())
        Deferred.unsafeDone(state.serving, Exit.void)
        EngineState.wakeWorkers(state, state.parked.length)
        EngineState.rearm(state)
        return Effect.void
      })

    // -- submit ----------------------------------------------------------------------------
    // room made and tasks ended by other engines on the same store (the memory store)
    if (settings.maxQueued !== Number.POSITIVE_INFINITY && store.onRoom !== undefined) {
      yield* store.onRoom(() => EngineState.signalRoom(state))
    }
    if (store.onFinished !== undefined) {
      yield* store.onFinished((record) => EngineState.resolveWaiters(state, record), instanceId)
    }
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

    // -- queries ---------------------------------------------------------------------------
    // an id no store can hold names no task: answered here, the same on every store
    const get = (id: string): Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable> =>
      Validate.textIssue(id) === undefined ? StoreRetry.briefly(store.get(id as TaskId)) : Effect.succeedNone

    const notFound = (id: string) => Effect.fail(new TaskNotFound({ id }))

    /** The terminal record of a task, waiting for it; polls a shared store as a backstop. */
    const terminal = (id: string): Effect.Effect<TaskRecord, TaskNotFound | StoreUnavailable> =>
      Effect.flatMap(Deferred.make<TaskRecord>(), (done) => {
        const waiting = state.waiters.get(id)
        if (waiting === undefined) state.waiters.set(id, [done])
        else waiting.push(done)
        const forget = Effect.sync(() => {
          const list = state.waiters.get(id)
          if (list === undefined) return
          const rest = list.filter((d) => d !== done)
          if (rest.length === 0) state.waiters.delete(id)
          else state.waiters.set(id, rest)
        })
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

    const endedCancelled = (id: string): Effect.Effect<boolean> =>
      Effect.match(terminal(id), { onFailure: () => false, onSuccess: (record) => record.status === "cancelled" })

    const cancel = (id: string): Effect.Effect<boolean, TaskNotFound | StoreUnavailable> =>
      Effect.suspend(() => {
        if (Validate.textIssue(id) !== undefined) return notFound(id)
        const running = state.running.get(id)
        if (running?.behind !== undefined) {
          // its attempt is over and its settlement on the way: answer from what lands
          const behind = running.behind
          return Effect.zipRight(Effect.async<void>((resume) => void behind.push(() => resume(Effect.void))), cancel(id))
        }
        if (running !== undefined) {
          // interrupt here, then wait for the worker to settle it as cancelled
          // true only when it ends cancelled: the attempt may complete before the interruption lands
          return Effect.zipRight(Dispatcher.stopRunning(engine, id, "cancel"), endedCancelled(id))
        }
        return Effect.flatMap(StoreRetry.briefly(store.cancel(id as TaskId)), (result): Effect.Effect<
          boolean,
          TaskNotFound | StoreUnavailable
        > => {
          switch (result) {
            case "notFound":
              return notFound(id)
            case "finished":
              return Effect.succeed(false)
            case "requested":
              // another instance runs it and stops it at its next heartbeat, unless it finishes
              // first: wait (up to a lease) for how it ends
              return Effect.timeoutTo(endedCancelled(id), {
                duration: Duration.millis(settings.leaseMillis + settings.heartbeatMillis),
                onSuccess: (cancelled) => cancelled,
                onTimeout: () => true
              })
            case "cancelled":
              return Effect.flatMap(get(id), (record) =>
                Effect.sync(() => {
                  if (Option.isSome(record)) {
                    EngineState.resolveWaiters(state, record.value)
                    EngineState.signalRoom(state)
                    metrics.record(record.value.name, "cancelled", 0)
                  }
                  EngineState.signalSettled(state)
                  return true
                }))
          }
        })
      })

    const retry = (id: string): Effect.Effect<boolean, TaskNotFound | StoreUnavailable> =>
      Validate.textIssue(id) !== undefined ? notFound(id) : Effect.flatMap(StoreRetry.briefly(store.requeue(id as TaskId)), (result): Effect.Effect<
        boolean,
        TaskNotFound | StoreUnavailable
      > => {
        switch (result) {
          case "notFound":
            return notFound(id)
          case "notFinished":
            return Effect.succeed(false)
          case "requeued":
            return Effect.flatMap(get(id), (record) =>
              Effect.sync(() => {
                EngineState.wakeWorkers(state, 1)
                if (Option.isSome(record)) metrics.record(record.value.name, "submitted", 1)
                return true
              }))
        }
      })

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
        state.settled.push(settled)
        const idle = state.running.size === 0 && state.claiming === 0
        const check = idle
          ? Effect.map(
            StoreRetry.untilDone(store.nextRunAt(state.names), "drain"),
            (next) => Option.isNone(next) || next.value.getTime() > clock.unsafeCurrentTimeMillis()
          )
          : Effect.succeed(false)
        return Effect.flatMap(check, (done) => (done ? Effect.void : Effect.zipRight(Deferred.await(settled), drain)))
      }))

    const service: TaskEngine = TaskEngine.of({
      instanceId,
      submit,
      submitMany,
      submitUnknown,
      get,
      await: awaitTask,
      cancel,
      retry,
      list,
      watch,
      changes,
      subscribe: store.subscribe,
      drain,
      metrics: metrics.snapshot,
      cleanup: Effect.suspend(() => Cleanup.runOnce(store, cleanup ?? Cleanup.policy())),
      definitions: Effect.sync(() => new Map(state.definitions)),
      register
    })
    serviceContext = Context.add(workerContext, TaskEngine, service)
    EngineState.ofService.set(service, state)

    // -- fibers ----------------------------------------------------------------------------
    for (let i = 0; i < settings.maxConcurrent; i++) {
      yield* Dispatcher.spawnWorker(engine, workerScope, serviceContext)
    }
    if (Dispatcher.writesBehind(store)) {
      yield* Effect.forkScoped(Dispatcher.settler(engine))
      yield* Effect.forkScoped(Dispatcher.settler(engine))
    }
    yield* Effect.forkScoped(Dispatcher.timer(engine))
    yield* Effect.forkScoped(Dispatcher.heartbeat(engine))
    yield* Effect.forkScoped(Dispatcher.listen(engine))
    if (cleanup !== undefined) yield* Effect.forkScoped(Cleanup.schedule(store, cleanup))

    // -- shutdown (runs before the fibers above are interrupted) -----------------------------
    const allSettled: Effect.Effect<void> = Effect.flatMap(Deferred.make<void>(), (settled) =>
      Effect.suspend(() => {
        if (state.running.size === 0 && state.claiming === 0) return Effect.void
        state.settled.push(settled)
        return Effect.zipRight(Deferred.await(settled), allSettled)
      }))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        state.closing = true
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
        for (const waiting of state.waiters.values()) {
          for (const d of waiting) Deferred.unsafeDone(d, Effect.interrupt)
        }
        state.waiters.clear()
      }).pipe(Effect.catchAllCause((cause) => Effect.logError("shutdown failed", Cause.pretty(cause))))
    )
    return service
  })

/**
 * The engine as a layer: requires a `TaskStore`; provides `TaskEngine`. Handlers register with
 * `Definition.toLayer`, provided on top of it.
 *
 * @example
 * import { Effect, Layer, Schema } from "effect"
 * import { Task, TaskEngine, TaskStore } from "effect-tasks"
 *
 * const Hello = Task.make("hello", { payload: Schema.Struct({ name: Schema.String }), success: Schema.String })
 * const HelloLive = Hello.toLayer(({ name }) => Effect.succeed(`hello ${name}`))
 *
 * const AppLayer = HelloLive.pipe(
 *   Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 5 })),
 *   Layer.provide(TaskStore.layerMemory)
 * )
 *
 * const program = Effect.gen(function*() {
 *   const engine = yield* TaskEngine.TaskEngine
 *   const id = yield* engine.submit(Hello, { name: "world" })
 *   return yield* engine.await(Hello, id)
 * }).pipe(Effect.provide(AppLayer))
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TaskEngine, never, TaskStore> =>
  Layer.scoped(TaskEngine, make(options))
