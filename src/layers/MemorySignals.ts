/**
 * The memory store's signals to the engines attached to it. Several engines may share one store
 * (a producer that only submits, workers): as PostgreSQL's NOTIFY does, the store tells every
 * attached engine (`onWakeup`) of work another one made (an insert, a release, a retry, a
 * requeue), and every engine waiting for room (`onRoom`) of tasks leaving the backlog, whoever
 * claimed or cancelled them, and every engine (`onFinished`) of the tasks that others ended, so
 * that an `await` on one engine ends when another ran the task. An engine is attached while the
 * scope of its call lives; the lists are written only here.
 *
 * @since 0.1.0
 * @internal
 */
import type { Scope } from "effect"
import { Effect, Stream } from "effect"
import type { TaskRecord } from "../services/TaskRecord.js"
import type { TaskStore } from "../services/TaskStore.js"
import type { Row } from "./MemoryRows.js"
import { toRecord } from "./MemoryRows.js"

/** @internal */
export interface MemorySignals {
  /** The engines attached through `onWakeup` (callers check `length` before signalling). */
  readonly listeners: ReadonlyArray<{ readonly owner: string | undefined; readonly wake: (at?: number) => void }>
  /** The engines attached through `onFinished`. */
  readonly finishListeners: ReadonlyArray<
    { readonly owner: string | undefined; readonly finished: (record: TaskRecord) => void }
  >
  /** Tells every attached engine but `from` of work due at `at`. */
  readonly signalWork: (at: number, from: string | undefined) => void
  /** Tells every attached engine but `from` that the row's task ended, each with a record of its own. */
  readonly signalFinished: (row: Row, from: string | undefined) => void
  /** Tells every engine waiting for room that a task left the backlog. */
  readonly signalRoom: () => void
  /** The port's members that attach an engine. */
  readonly port: Required<Pick<TaskStore, "wakeups" | "onWakeup" | "onRoom" | "onFinished">>
}

/** No engine attached yet. @internal */
export const make = (): MemorySignals => {
  /** The engines attached through `onWakeup`: each is told of work the others make. */
  const listeners: Array<{ readonly owner: string | undefined; readonly wake: (at?: number) => void }> = []
  /** The engines attached through `onRoom`. */
  const roomListeners: Array<() => void> = []
  /** The engines attached through `onFinished`. */
  const finishListeners: Array<{ readonly owner: string | undefined; readonly finished: (record: TaskRecord) => void }> =
    []

  /** Tells every attached engine but `from` of work due at `at`. */
  const signalWork = (at: number, from: string | undefined): void => {
    for (let i = 0; i < listeners.length; i++) {
      const listener = listeners[i]!
      if (from === undefined || listener.owner !== from) listener.wake(at)
    }
  }

  /** Tells every attached engine but `from` that the row's task ended, each with a record of its own. */
  const signalFinished = (row: Row, from: string | undefined): void => {
    for (let i = 0; i < finishListeners.length; i++) {
      const listener = finishListeners[i]!
      if (from === undefined || listener.owner !== from) listener.finished(toRecord(row))
    }
  }

  /** A task left the backlog: waiters for room may go on. */
  const signalRoom = (): void => {
    for (let i = 0; i < roomListeners.length; i++) roomListeners[i]!()
  }

  const attach = <A>(list: Array<A>, item: A): Effect.Effect<void, never, Scope.Scope> =>
    Effect.acquireRelease(Effect.sync(() => void list.push(item)), () =>
      Effect.sync(() => {
        const i = list.indexOf(item)
        if (i >= 0) list.splice(i, 1)
      }))

  return {
    listeners,
    finishListeners,
    signalWork,
    signalFinished,
    signalRoom,
    port: {
      wakeups: Stream.asyncScoped<void>((emit) => attach(listeners, { owner: undefined, wake: () => void emit.single() })),
      onWakeup: (wake, owner) => attach(listeners, { owner, wake }),
      onRoom: (room) => attach(roomListeners, room),
      onFinished: (finished, owner) => attach(finishListeners, { owner, finished })
    }
  }
}
