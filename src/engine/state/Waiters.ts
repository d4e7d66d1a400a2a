/**
 * The fibers waiting on the engine: awaiters of a task's terminal record, `drain` and shutdown
 * waiting for the engine to go idle, and submits waiting for room in the backlog. The only
 * writer of these fields.
 *
 * An awaiter is registered in `waiters` until a terminal record resolves it (`resolveWaiters`)
 * or it is interrupted; one waiting for idleness sits in `settled` until `signalSettled` finds
 * nothing running and no claim in flight; a submit waiting for room sits in `room` until
 * `signalRoom` (and `roomGeneration` tells a submit that counted the backlog before a signal).
 *
 * @since 0.2.0
 * @internal
 */
import { Deferred, Effect } from "effect"
import type { TaskRecord } from "../../services/TaskRecord.js"

/** @internal */
export interface WaitersState {
  /** Awaiters of a task's terminal record. */
  readonly waiters: Map<string, Array<Deferred.Deferred<TaskRecord>>>
  /** Fibers waiting for the engine to go idle (`drain`, shutdown). */
  settled: Array<Deferred.Deferred<void>>
  /** The resume callbacks of submits waiting for room; each removes its own when interrupted. */
  room: Set<(effect: Effect.Effect<void>) => void>
  /** Bumped by every `signalRoom`, so a submit never parks on a stale count of the backlog. */
  roomGeneration: number
}

/** What idleness is judged by (fields of other owners, read only). @internal */
interface Activity {
  readonly running: ReadonlyMap<string, unknown>
  readonly claiming: number
}

/** @internal */
export const make = (): WaitersState => ({ waiters: new Map(), settled: [], room: new Set(), roomGeneration: 0 })

/** Registers an awaiter of `id`'s terminal record; the returned effect takes it out again. @internal */
export const addWaiter = (state: WaitersState, id: string, done: Deferred.Deferred<TaskRecord>): Effect.Effect<void> => {
  const waiting = state.waiters.get(id)
  if (waiting === undefined) state.waiters.set(id, [done])
  else waiting.push(done)
  return Effect.sync(() => {
    const list = state.waiters.get(id)
    if (list === undefined) return
    const rest = list.filter((d) => d !== done)
    if (rest.length === 0) state.waiters.delete(id)
    else state.waiters.set(id, rest)
  })
}

/** Hands a terminal record to the task's awaiters. @internal */
export const resolveWaiters = (state: WaitersState, record: TaskRecord): void => {
  const waiting = state.waiters.get(record.id)
  if (waiting === undefined) return
  state.waiters.delete(record.id)
  for (const d of waiting) Deferred.unsafeDone(d, Effect.succeed(record))
}

/** Interrupts every awaiter (the engine has shut down). @internal */
export const interruptWaiters = (state: WaitersState): void => {
  for (const waiting of state.waiters.values()) {
    for (const d of waiting) Deferred.unsafeDone(d, Effect.interrupt)
  }
  state.waiters.clear()
}

/** Waits for the next `signalSettled` that finds the engine idle. @internal */
export const awaitSettled = (state: WaitersState, settled: Deferred.Deferred<void>): Effect.Effect<void> => {
  state.settled.push(settled)
  return Deferred.await(settled)
}

/**
 * Tells `drain` and shutdown that the engine may be idle: only when nothing runs, the one time
 * their condition can have become true. @internal
 */
export const signalSettled = (state: WaitersState & Activity): void => {
  if (state.settled.length > 0 && state.running.size === 0 && state.claiming === 0) {
    const waiting = state.settled
    state.settled = []
    for (const d of waiting) Deferred.unsafeDone(d, Effect.void)
  }
}

/** Tells submitters waiting for room that tasks left the backlog. @internal */
export const signalRoom = (state: WaitersState): void => {
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
export const awaitRoom = (state: WaitersState, generation: number): Effect.Effect<void> =>
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
