/**
 * The engine: the `TaskEngine` service that submits, inspects, awaits and cancels tasks, and the
 * layer that runs them. Building the layer starts the workers, the timer, the heartbeat, the
 * store listener and cleanup (see `Dispatcher`); closing its scope shuts down gracefully:
 * intake stops, running attempts get `shutdownTimeout` to finish, the rest are interrupted and
 * handed back to the store as `pending`. Nothing disappears.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, ExecutionStrategy, Option, Scope, Stream } from "effect"
import { ErrorReporter } from "../services/ErrorReporter.js"
import type {
  DuplicateTask,
  EngineClosed,
  OptionInvalid,
  PayloadInvalid,
  QueueFull,
  StoreUnavailable,
  TaskCancelled,
  TaskNotFound,
  TaskTimeout,
  UnknownTask
} from "../services/TaskError.js"
import type { MetricsSnapshot } from "../services/TaskMetrics.js"
import { TaskMetrics } from "../services/TaskMetrics.js"
import type { TaskFilter, TaskId, TaskRecord } from "../services/TaskRecord.js"
import { TaskStore } from "../services/TaskStore.js"
import * as Cleanup from "./Cleanup.js"
import * as Control from "./Control.js"
import * as Dispatcher from "./Dispatcher.js"
import type { Engine, Settings } from "./EngineState.js"
import * as EngineState from "./EngineState.js"
import * as Handlers from "./state/Handlers.js"
import * as Queries from "./Queries.js"
import * as Registry from "./Registry.js"
import * as Shutdown from "./Shutdown.js"
import * as Submit from "./Submit.js"
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


/**
 * Builds an engine in the current scope over the `TaskStore`, `TaskMetrics` and `ErrorReporter`
 * in context. The public `TaskEngine.make` and `TaskEngine.layer` (`src/TaskEngine.ts`) provide
 * in-memory metrics and reporter where none is given.
 *
 * @since 0.2.0
 * @internal
 */
export const make = (
  options: Options = {}
): Effect.Effect<TaskEngine, never, TaskStore | TaskMetrics | ErrorReporter | Scope.Scope> =>
  Effect.gen(function*() {
    const settings = settingsOf(options)
    const store = yield* TaskStore
    const metrics = yield* TaskMetrics
    const reporter = yield* ErrorReporter
    const clock = yield* Effect.clock
    // workers live in a scope of their own, closed after the graceful shutdown below
    const workerScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const instanceId = options.instanceId ?? `engine-${randomHex(6)}`
    const state = yield* EngineState.make(instanceId)
    const local = store.local !== undefined && store.local.serves(store) ? store.local : undefined
    const ahead = store.ahead !== undefined && store.ahead.serves(store) ? store.ahead : undefined
    const engine: Engine = { state, store, local, ahead, metrics, reporter, clock, settings }
    const cleanup = options.cleanup === false ? undefined : Cleanup.policy(options.cleanup ?? {})
    for (const definition of options.definitions ?? []) Handlers.declare(state, definition)

    const tracing = options.tracing ?? false
    const idPrefix = randomHex(8)
    let idCounter = 0
    const nextId = (): TaskId => `${idPrefix}-${(idCounter++).toString(36)}` as TaskId

    // -- operations, each in its module --------------------------------------------------
    const workerContext = yield* Effect.context<TaskStore>()
    let serviceContext: Context.Context<never> = Context.empty()
    const register = Registry.make(engine, tracing, () => serviceContext)
    // room made and tasks ended by other engines on the same store (the memory store)
    if (settings.maxQueued !== Number.POSITIVE_INFINITY) yield* store.onRoom(() => EngineState.signalRoom(state))
    yield* store.onFinished((record) => EngineState.resolveWaiters(state, record), instanceId)
    const { submit, submitMany, submitUnknown } = Submit.make(engine, nextId, instanceId)
    const queries = Queries.make(engine)
    const { awaitTask, changes, drain, get, list, watch } = queries
    const { cancel, retry } = Control.make(engine, queries)

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
    yield* Effect.addFinalizer(() => Shutdown.shutdown(engine))
    return service
  })
