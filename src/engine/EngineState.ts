/**
 * The state one engine instance owns: its handlers, the attempts it is running, its idle
 * workers and the fibers waiting on it. It is changed only inside `Effect.sync` sections of the
 * engine's own fibers (the actor's mailbox is the single JavaScript thread), never shared with
 * another engine.
 *
 * @since 0.1.0
 * @internal
 */
import type { Fiber, Schema } from "effect"
import { Deferred, Effect } from "effect"
import type { TaskRecord } from "../services/TaskRecord.js"
import type { ClaimedTask } from "../services/TaskStore.js"
import type { Codec } from "./Codec.js"
import * as Codecs from "./Codec.js"
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
export interface EngineState {
  readonly owner: string
  readonly handlers: Map<string, Registered>
  /** Definitions known without a handler here (producers), by name. */
  readonly definitions: Map<string, Task.Any>
  /** The names this engine claims: those with a handler. */
  names: ReadonlyArray<string>
  readonly running: Map<string, Running>
  /**
   * The resume callbacks of parked workers. Parking is `Effect.async`, not a `Queue.take`: a take
   * on an empty queue allocates a `Deferred`, which measured several microseconds in Effect 3.22.
   */
  readonly parked: Array<(effect: Effect.Effect<void>) => void>
  /** Bumped whenever work may have appeared, so a worker never parks on stale news. */
  generation: number
  /** Claims sent to the store and not yet answered: a claimed task is in neither place meanwhile. */
  claiming: number
  /** Settlements being written behind (still in `running` until they land). */
  behind: number
  /** Settlements written behind, waiting for a settler fiber to take them. */
  readonly outbox: Array<Outgoing>
  /** The resume callbacks of parked settler fibers. */
  readonly settlers: Array<(effect: Effect.Effect<void>) => void>
  /** Settlement writes (`settleMany`) in flight. */
  writing: number
  closing: boolean
  /** The timer fiber's resume callback while it waits to be re-armed. */
  timer: ((effect: Effect.Effect<void>) => void) | undefined
  /** A re-arm that came while the timer was not waiting. */
  rearmed: boolean
  /** The timer saw due work: the next worker to park (the due work taken) re-arms it. */
  dueWhileBusy: boolean
  /** Awaiters of a task's terminal record. */
  readonly waiters: Map<string, Array<Deferred.Deferred<TaskRecord>>>
  /** Fibers waiting for any settlement (`drain`, shutdown) or for room in the backlog. */
  settled: Array<Deferred.Deferred<void>>
  /** The resume callbacks of submits waiting for room; each removes its own when interrupted. */
  room: Set<(effect: Effect.Effect<void>) => void>
  /** Bumped by every `signalRoom`, so a submit never parks on a stale count of the backlog. */
  roomGeneration: number
  /** The heartbeat fiber, parked while nothing runs. */
  busy: Deferred.Deferred<void> | undefined
  /** A wake-up woke one idle worker; the others are woken when the next claim comes back. */
  restAfterClaim: boolean
  /** Done once a handler is registered: until then the engine runs nothing and need not listen. */
  readonly serving: Deferred.Deferred<void>
  /** Store calls that succeeded, for settlements waiting to retry (`StoreRetry.Answers`). */
  answers: number
  readonly answered: Array<() => void>
}

/** @internal */
export const make = (owner: string): Effect.Effect<EngineState> =>
  Effect.gen(function*() {
    return {
      owner,
      handlers: new Map(),
      definitions: new Map(),
      names: [],
      running: new Map(),
      parked: [],
      generation: 0,
      claiming: 0,
      behind: 0,
      outbox: [],
      settlers: [],
      writing: 0,
      closing: false,
      timer: undefined,
      rearmed: false,
      dueWhileBusy: false,
      waiters: new Map(),
      settled: [],
      room: new Set(),
      roomGeneration: 0,
      busy: undefined,
      restAfterClaim: false,
      serving: yield* Deferred.make<void>(),
      answers: 0,
      answered: []
    }
  })

/** Wakes up to `n` parked workers (all of them for `Infinity`). @internal */
export const wakeWorkers = (state: EngineState, n: number): void => {
  state.generation++
  for (let k = Math.min(n, state.parked.length); k > 0; k--) state.parked.pop()!(Effect.void)
}

/** Asks the timer fiber to look at the next `runAt` again. @internal */
export const rearm = (state: EngineState): void => {
  const timer = state.timer
  if (timer === undefined) {
    state.rearmed = true
  } else {
    state.timer = undefined
    timer(Effect.void)
  }
}

/** The timer fiber's wait for `rearm`. @internal */
export const awaitRearm = (state: EngineState): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (state.rearmed) {
      state.rearmed = false
      resume(Effect.void)
      return
    }
    state.timer = resume
    return Effect.sync(() => {
      if (state.timer === resume) state.timer = undefined
    })
  })

const releaseAll = (deferreds: Array<Deferred.Deferred<void>>): void => {
  for (const d of deferreds) Deferred.unsafeDone(d, Effect.void)
}

/**
 * Tells `drain` and shutdown that the engine may be idle: only when nothing runs, the one time
 * their condition can have become true. @internal
 */
export const signalSettled = (state: EngineState): void => {
  if (state.settled.length > 0 && state.running.size === 0 && state.claiming === 0) {
    const waiting = state.settled
    state.settled = []
    releaseAll(waiting)
  }
}

/** Tells submitters waiting for room that tasks left the backlog. @internal */
export const signalRoom = (state: EngineState): void => {
  state.roomGeneration++
  if (state.room.size > 0) {
    const waiting = state.room
    state.room = new Set()
    for (const resume of waiting) resume(Effect.void)
  }
}

/**
 * Waits for the next `signalRoom`, at once if one came since `generation`; an interrupted wait
 * leaves nothing behind. @internal
 */
export const awaitRoom = (state: EngineState, generation: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (state.roomGeneration !== generation) {
      resume(Effect.void)
      return
    }
    state.room.add(resume)
    return Effect.sync(() => {
      state.room.delete(resume)
    })
  })

/** The states of engine services, for tests that look inside an engine. @internal */
export const ofService = new WeakMap<object, EngineState>()

/** Hands a terminal record to the task's awaiters. @internal */
export const resolveWaiters = (state: EngineState, record: TaskRecord): void => {
  const waiting = state.waiters.get(record.id)
  if (waiting === undefined) return
  state.waiters.delete(record.id)
  for (const d of waiting) Deferred.unsafeDone(d, Effect.succeed(record))
}

/** A finished attempt whose settlement is written behind, and how it settles. @internal */
export interface Outgoing {
  readonly attempt: import("./Execute.js").Attempt
  readonly decided: import("./Settle.js").Decision
}

/** The most settlements a settler writes in one `settleMany`. @internal */
export const settleBatch = 500

/**
 * Whether a settler should write now: settlements wait, and either no write is in flight, or a
 * full statement of them does (a second write at once would carry the few that came meanwhile: a
 * statement has a fixed cost, on PostgreSQL 0.15-0.3 ms of CPU for a `task_settle` and as much
 * again in this process), or the engine has nothing else going on (no attempt running, no claim
 * in flight: no more settlements are coming soon, so the last of a backlog lands sooner).
 * @internal
 */
export const settleReady = (state: EngineState): boolean =>
  state.outbox.length > 0 &&
  (state.writing === 0 || state.outbox.length >= settleBatch ||
    (state.claiming === 0 && state.running.size === state.behind))

/** Wakes a waiting settler if it should write now. @internal */
export const wakeSettler = (state: EngineState): void => {
  if (!settleReady(state)) return
  const settler = state.settlers.pop()
  if (settler !== undefined) settler(Effect.void)
}

/** Leaves a settlement in the outbox for a settler, waking one when it should write. @internal */
export const sendBehind = (state: EngineState, outgoing: Outgoing): void => {
  outgoing.attempt.running.behind = []
  state.behind++
  state.outbox.push(outgoing)
  wakeSettler(state)
}

/** A settlement written behind has landed: its waiters (a `cancel`) go on. @internal */
export const landed = (state: EngineState, running: Running): void => {
  state.behind--
  const callbacks = running.behind ?? []
  running.behind = undefined
  for (const callback of callbacks) callback()
}

/** Registers an attempt as running, and wakes the heartbeat fiber. @internal */
export const addRunning = (state: EngineState, running: Running): void => {
  state.running.set(running.record.id, running)
  if (state.busy !== undefined) {
    const busy = state.busy
    state.busy = undefined
    Deferred.unsafeDone(busy, Effect.void)
  }
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
