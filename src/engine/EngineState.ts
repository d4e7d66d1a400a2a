/**
 * The state one engine instance owns, composed of parts that each have one writer: the worker
 * pool (`state/WorkerPool`), the timer's signals (`state/Timer`), the outbox of settlements
 * (`state/Outbox`), the waiters (`state/Waiters`), the handlers (`state/Handlers`) and, here, the
 * running attempts and the lifecycle (`closing`). Other modules read any field but change one
 * only by calling its owner (`test/Architecture.test.ts` checks it). It is changed only inside
 * synchronous sections of the engine's own fibers (the actor's mailbox is the single JavaScript
 * thread), never shared with another engine; `check` states the invariants the tests assert.
 *
 * @since 0.1.0
 * @internal
 */
import type { Fiber, Schema } from "effect"
import { Deferred, Effect } from "effect"
import type { ClaimedTask } from "../services/TaskStore.js"
import type { Codec } from "./Codec.js"
import * as Codecs from "./Codec.js"
import * as Handlers from "./state/Handlers.js"
import * as Outbox from "./state/Outbox.js"
import * as Timer from "./state/Timer.js"
import * as Waiters from "./state/Waiters.js"
import * as WorkerPool from "./state/WorkerPool.js"
import type * as StoreRetry from "./StoreRetry.js"
import type * as Task from "./Task.js"

/** The codecs of one definition, compiled once. @internal */
export interface DefinitionCodecs {
  readonly payload: Codec<unknown>
  readonly success: Codec<unknown>
  readonly failure: Codec<unknown>
}

const codecCache = new WeakMap<Task.Any, DefinitionCodecs>()

/** @internal */
export const codecsOf = (definition: Task.Any): DefinitionCodecs => {
  let codecs = codecCache.get(definition)
  if (codecs === undefined) {
    codecs = {
      payload: Codecs.make(definition.payloadSchema as unknown as Schema.Schema<unknown, unknown, never>),
      success: Codecs.make(definition.successSchema as unknown as Schema.Schema<unknown, unknown, never>),
      failure: Codecs.make(definition.failureSchema as unknown as Schema.Schema<unknown, unknown, never>)
    }
    codecCache.set(definition, codecs)
  }
  return codecs
}

/** A registered handler, ready to run: timeout and context applied. @internal */
export interface Registered {
  readonly definition: Task.Any
  /** The handler it was registered with: registering it again is a no-op, another one an error. */
  readonly handler: Task.Handler
  readonly codecs: DefinitionCodecs
  readonly run: (payload: unknown, task: Task.TaskInfo) => Effect.Effect<unknown, unknown>
}

/** Why an engine stopped a running attempt. @internal */
export type StopReason = "cancel" | "shutdown" | "lost"

/** An attempt this engine is running. @internal */
export interface Running {
  readonly record: ClaimedTask
  readonly startedMillis: number
  /** The worker running it; interrupting it stops the attempt. */
  readonly fiber: Fiber.RuntimeFiber<unknown, unknown>
  stop: StopReason | undefined
  /**
   * Set while the attempt's settlement is written behind (see `Dispatcher.worker`): the attempt
   * is over and its worker has moved on, so nothing may interrupt it; the callbacks run once the
   * settlement has landed.
   */
  behind: Array<() => void> | undefined
}

/** @internal */
export interface EngineState
  extends WorkerPool.WorkerPoolState, Timer.TimerState, Outbox.OutboxState, Waiters.WaitersState,
    Handlers.HandlersState<Registered>, StoreRetry.Answers
{
  readonly owner: string
  /** The attempts running here, by task id. */
  readonly running: Map<string, Running>
  /** Set once when shutdown begins: no more submits, claims or parks. */
  closing: boolean
  /** The heartbeat fiber, parked while nothing runs. */
  busy: Deferred.Deferred<void> | undefined
}

/** @internal */
export const make = (owner: string): Effect.Effect<EngineState> =>
  Effect.map(Deferred.make<void>(), (serving) => ({
    owner,
    ...WorkerPool.make(),
    ...Timer.make(),
    ...Outbox.make(),
    ...Waiters.make(),
    ...Handlers.make<Registered>(serving),
    running: new Map(),
    closing: false,
    busy: undefined,
    answers: 0,
    answered: []
  }))

export { awaitRearm, rearm } from "./state/Timer.js"
export { claimAnswered, claimSent, park, wakeOneThenRest, wakeWorkers } from "./state/WorkerPool.js"
export {
  addWaiter,
  awaitRoom,
  awaitSettled,
  interruptWaiters,
  resolveWaiters,
  signalRoom,
  signalSettled
} from "./state/Waiters.js"
export type { Outgoing } from "./state/Outbox.js"
export { batchWritten, landed, parkSettler, sendBehind, settleBatch, settleReady, takeBatch, wakeSettler } from "./state/Outbox.js"

/** The states of engine services, for tests that look inside an engine. @internal */
export const ofService = new WeakMap<object, EngineState>()

/** Registers an attempt as running, and wakes the heartbeat fiber. @internal */
export const addRunning = (state: EngineState, running: Running): void => {
  state.running.set(running.record.id, running)
  if (state.busy !== undefined) {
    const busy = state.busy
    state.busy = undefined
    Deferred.unsafeDone(busy, Effect.void)
  }
}

/** An attempt is no longer running here (settled, or its lease lost). @internal */
export const removeRunning = (state: EngineState, id: string): void => {
  state.running.delete(id)
}

/** The heartbeat fiber waits for an attempt to run (at once when one does). @internal */
export const awaitBusy = (state: EngineState, busy: Deferred.Deferred<void>): Effect.Effect<void> => {
  if (state.running.size > 0) return Effect.void
  state.busy = busy
  return Deferred.await(busy)
}

/** Shutdown begins. @internal */
export const close = (state: EngineState): void => {
  state.closing = true
}

/**
 * The engine's invariants, as the messages of those that do not hold (none: an empty array).
 * The tests call it on engines they have run. @internal
 */
export const check = (state: EngineState, settings: { readonly maxConcurrent: number }): ReadonlyArray<string> => {
  const broken: Array<string> = []
  const n = settings.maxConcurrent
  if (state.claiming < 0 || state.claiming > n) broken.push(`claiming ${state.claiming} outside 0..${n}`)
  if (state.parked.length > n) broken.push(`${state.parked.length} parked workers, more than ${n}`)
  if (state.running.size - state.behind > n) broken.push(`${state.running.size - state.behind} attempts running, more than ${n}`)
  if (state.behind < 0 || state.behind > state.running.size) broken.push(`behind ${state.behind} outside 0..running`)
  if (state.writing < 0 || state.writing > 2) broken.push(`writing ${state.writing} outside 0..2 (two settlers)`)
  if (state.outbox.length > state.behind) broken.push(`outbox ${state.outbox.length} longer than behind ${state.behind}`)
  for (const [id, running] of state.running) {
    if (running.record.id !== id) broken.push(`running ${id} holds the record of ${running.record.id}`)
  }
  for (const [id, waiting] of state.waiters) {
    if (waiting.length === 0) broken.push(`an empty waiter list for ${id}`)
  }
  if (state.names.length !== state.handlers.size) broken.push(`names ${state.names.length} != handlers ${state.handlers.size}`)
  return broken
}

/** The engine's settings, resolved to milliseconds. @internal */
export interface Settings {
  readonly maxConcurrent: number
  readonly maxQueued: number
  readonly whenFull: "fail" | "wait"
  readonly leaseMillis: number
  readonly heartbeatMillis: number
  readonly pollMillis: number
  readonly shutdownMillis: number
  readonly errorReports: "final" | "attempts"
}

/** What the engine's fibers share: its state, its ports and its settings. @internal */
export interface Engine {
  readonly state: EngineState
  readonly store: import("../services/TaskStore.js").TaskStore
  /** The store's synchronous forms, when it offers them for itself (`LocalTaskStore.serves`). */
  readonly local: import("../services/TaskStore.js").LocalTaskStore | undefined
  /** The store's tasks claimed ahead, when it offers them for itself (`AheadClaims.serves`). */
  readonly ahead: import("../services/TaskStore.js").AheadClaims | undefined
  readonly metrics: import("../services/TaskMetrics.js").TaskMetrics
  readonly reporter: import("../services/ErrorReporter.js").ErrorReporter
  readonly clock: import("effect").Clock.Clock
  readonly settings: Settings
}
