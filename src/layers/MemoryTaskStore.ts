/**
 * The in-memory `TaskStore`: the embedded default and the test fake. One actor owns the state and
 * changes it only inside `Effect.sync` (or in the synchronous calls of `local`, which the engine
 * makes from its own fibers), so every operation is atomic; time comes from the `Clock` captured
 * when the layer is built, so `TestClock` drives leases, delays and backoffs.
 *
 * Each task is one mutable row (times as epoch milliseconds, `-1` for none), changed in place by
 * every transition; callers get immutable `TaskRecord` snapshots made on the way out. Keeping the
 * long-lived rows free of per-transition allocations is what keeps a large backlog cheap for the
 * garbage collector.
 *
 * Where a pending task waits (each queue a `Heap`: a FIFO run of in-order pushes beside a binary
 * heap, so the usual case costs O(1)):
 * - `delayed[name]`, by `runAt`, while `runAt` is in the future;
 * - `ready[name]`, by the aged priority key `runAt - priority * agingMillis` and then submission
 *   order, once due (moved there by `claim` and `nextRunAt`).
 * A processing task also sits in `leases`, by `lockedUntil`; once its lease expires it is
 * moved back to `ready` and claimed again. Heap entries are never removed in place: an entry whose
 * version no longer matches its row's is stale and is skipped when it reaches the top.
 *
 * Several engines may share one store (a producer that only submits, workers): as PostgreSQL's
 * NOTIFY does, the store tells every attached engine (`onWakeup`) of work another one made (an
 * insert, a release, a retry, a requeue), and every engine waiting for room (`onRoom`) of tasks
 * leaving the backlog, whoever claimed or cancelled them, and every engine (`onFinished`) of the
 * tasks that others ended, so that an `await` on one engine ends when another ran the task.
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Effect, Layer, Option, Stream } from "effect"
import type {
  CancelResult,
  ClaimedTask,
  ClaimOptions,
  HeartbeatResult,
  InsertResult,
  RequeueResult,
  Settlement
} from "../services/TaskStore.js"
import { TaskStore } from "../services/TaskStore.js"
import type { NewTask, TaskErrorInfo, TaskFilter, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import { storedDate } from "../services/TaskRecord.js"
import * as ChangeFeed from "./ChangeFeed.js"
import * as Heap from "./Heap.js"

/**
 * Options of the memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryTaskStoreOptions {
  /**
   * How much waiting one priority level is worth, so that low priorities are never starved: a
   * task of priority `p` is taken before a task of priority `p + 1` that became due more than
   * `priorityAgingMillis` later. Default 60,000 (one minute).
   */
  readonly priorityAgingMillis?: number | undefined
}

interface Row {
  readonly id: TaskId
  readonly name: string
  readonly payload: unknown
  readonly idempotencyKey: string | null
  readonly createdAt: number
  readonly seq: number
  status: TaskStatus
  attempt: number
  progress: number
  result: unknown
  error: TaskErrorInfo | null
  priority: number
  runAt: number
  startedAt: number
  finishedAt: number
  updatedAt: number
  lockedBy: string | null
  lockedUntil: number
  /** Bumped whenever the row is queued again or leaves a queue, so older heap entries turn stale. */
  version: number
  cancelRequested: boolean
}

interface Queues {
  readonly ready: Heap.Heap<Row>
  readonly delayed: Heap.Heap<Row>
}

const bySeq = (a: Row, b: Row): boolean => a.seq < b.seq

const date = (millis: number): Date | null => (millis < 0 ? null : new Date(millis))

/** An immutable snapshot of a row. */
const toRecord = (row: Row): TaskRecord => ({
  id: row.id,
  name: row.name,
  payload: row.payload,
  status: row.status,
  attempt: row.attempt,
  progress: row.progress,
  result: row.result,
  error: row.error,
  priority: row.priority,
  runAt: new Date(row.runAt),
  createdAt: new Date(row.createdAt),
  startedAt: date(row.startedAt),
  finishedAt: date(row.finishedAt),
  updatedAt: new Date(row.updatedAt),
  lockedBy: row.lockedBy,
  lockedUntil: date(row.lockedUntil),
  idempotencyKey: row.idempotencyKey
})

/**
 * Builds a memory store; the state lives as long as the returned service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MemoryTaskStoreOptions = {}): Effect.Effect<TaskStore> =>
  Effect.gen(function*() {
    const agingMillis = options.priorityAgingMillis ?? 60_000
    const clock = yield* Effect.clock
    const feed = yield* ChangeFeed.make
    const rows = new Map<string, Row>()
    const idempotency = new Map<string, TaskId>()
    const queues = new Map<string, Queues>()
    const leases = Heap.make<Row>(bySeq)
    let seq = 0
    let pending = 0
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
    const leftBacklog = (): void => {
      pending--
      for (let i = 0; i < roomListeners.length; i++) roomListeners[i]!()
    }

    const attach = <A>(list: Array<A>, item: A): Effect.Effect<void, never, Scope.Scope> =>
      Effect.acquireRelease(Effect.sync(() => void list.push(item)), () =>
        Effect.sync(() => {
          const i = list.indexOf(item)
          if (i >= 0) list.splice(i, 1)
        }))

    const queuesOf = (name: string): Queues => {
      let q = queues.get(name)
      if (q === undefined) {
        q = { ready: Heap.make(bySeq), delayed: Heap.make(bySeq) }
        queues.set(name, q)
      }
      return q
    }

    const changed = (row: Row): void => {
      if (feed.active()) feed.publish(toRecord(row))
    }

    /** Queues a pending row: in `ready` if due, else in `delayed`. */
    const enqueue = (row: Row, now: number): void => {
      const version = ++row.version
      const q = queuesOf(row.name)
      if (row.runAt <= now) Heap.push(q.ready, row, row.runAt - row.priority * agingMillis, version)
      else Heap.push(q.delayed, row, row.runAt, version)
    }

    const toPending = (row: Row, runAt: number, now: number): void => {
      row.status = "pending"
      row.runAt = runAt
      row.updatedAt = now
      row.lockedBy = null
      row.lockedUntil = -1
      pending++
      enqueue(row, now)
    }

    /** Moves expired leases back to pending (at-least-once delivery). */
    const expireLeases = (now: number): void => {
      while (Heap.size(leases) > 0) {
        const row = Heap.peekItem(leases)
        const key = Heap.peekKey(leases)
        const live = Heap.peekVersion(leases) === row.version && row.status === "processing" && row.lockedUntil === key
        if (live && key > now) return
        Heap.pop(leases)
        if (!live) continue
        toPending(row, now, now)
        changed(row)
      }
    }

    const isQueued = (heap: Heap.Heap<Row>): boolean => {
      const row = Heap.peekItem(heap)
      return Heap.peekVersion(heap) === row.version && row.status === "pending"
    }

    /** The first valid ready row of a name, after promoting its due delayed rows. */
    const readyHead = (q: Queues, now: number): Row | undefined => {
      const { delayed, ready } = q
      while (Heap.size(delayed) > 0) {
        if (!isQueued(delayed)) {
          Heap.pop(delayed)
          continue
        }
        if (Heap.peekKey(delayed) > now) break
        const row = Heap.peekItem(delayed)
        Heap.pop(delayed)
        enqueue(row, now)
      }
      while (Heap.size(ready) > 0) {
        if (isQueued(ready)) return Heap.peekItem(ready)
        Heap.pop(ready)
      }
      return undefined
    }

    const delayedHead = (q: Queues): number | undefined => {
      const { delayed } = q
      while (Heap.size(delayed) > 0) {
        if (isQueued(delayed)) return Heap.peekKey(delayed)
        Heap.pop(delayed)
      }
      return undefined
    }

    const insertNow = (tasks: ReadonlyArray<NewTask>, owner?: string): ReadonlyArray<InsertResult> => {
      const now = clock.unsafeCurrentTimeMillis()
      const results: Array<InsertResult> = []
      let due = Number.POSITIVE_INFINITY
      for (const task of tasks) {
        if (task.idempotencyKey !== null) {
          const existing = idempotency.get(task.idempotencyKey)
          if (existing !== undefined) {
            results.push({ id: existing, inserted: false })
            continue
          }
          idempotency.set(task.idempotencyKey, task.id)
        }
        const row: Row = {
          id: task.id,
          name: task.name,
          payload: task.payload,
          idempotencyKey: task.idempotencyKey,
          createdAt: now,
          seq: seq++,
          status: "pending",
          attempt: 0,
          progress: 0,
          result: null,
          error: null,
          priority: task.priority,
          // a time that is none (written around the engine, which refuses it) would break the heap
          runAt: storedDate(task.runAt).getTime(),
          startedAt: -1,
          finishedAt: -1,
          updatedAt: now,
          lockedBy: null,
          lockedUntil: -1,
          version: 0,
          cancelRequested: false
        }
        rows.set(task.id, row)
        pending++
        enqueue(row, now)
        changed(row)
        if (row.runAt < due) due = row.runAt
        results.push({ id: task.id, inserted: true })
      }
      if (due !== Number.POSITIVE_INFINITY && listeners.length > 0) signalWork(due, owner)
      return results
    }

    /** Claims the first runnable row of these names, or `undefined`. */
    const claimRow = (names: ReadonlyArray<string>, owner: string, now: number, lockedUntil: number): Row | undefined => {
      let best: Row | undefined
      let bestKey = 0
      let bestQueues: Queues | undefined
      for (const name of names) {
        const q = queues.get(name)
        if (q === undefined) continue
        const head = readyHead(q, now)
        if (head === undefined) continue
        const key = Heap.peekKey(q.ready)
        if (best === undefined || key < bestKey || (key === bestKey && head.seq < best.seq)) {
          best = head
          bestKey = key
          bestQueues = q
        }
      }
      if (best === undefined || bestQueues === undefined) return undefined
      Heap.pop(bestQueues.ready)
      const row = best
      row.status = "processing"
      row.attempt++
      row.progress = 0
      row.startedAt = now
      row.updatedAt = now
      row.lockedBy = owner
      row.lockedUntil = lockedUntil
      leftBacklog()
      Heap.push(leases, row, lockedUntil, ++row.version)
      return row
    }

    const claim = (options: ClaimOptions) =>
      Effect.sync((): ReadonlyArray<TaskRecord> => {
        const now = clock.unsafeCurrentTimeMillis()
        expireLeases(now)
        const claimed: Array<TaskRecord> = []
        const lockedUntil = now + options.leaseMillis
        while (claimed.length < options.limit) {
          const row = claimRow(options.names, options.owner, now, lockedUntil)
          if (row === undefined) break
          const record = toRecord(row)
          feed.publish(record)
          claimed.push(record)
        }
        return claimed
      })

    const claimOne = (names: ReadonlyArray<string>, owner: string, leaseMillis: number): ClaimedTask | undefined => {
      const now = clock.unsafeCurrentTimeMillis()
      expireLeases(now)
      const row = claimRow(names, owner, now, now + leaseMillis)
      if (row === undefined) return undefined
      if (!feed.active()) return { id: row.id, name: row.name, payload: row.payload, attempt: row.attempt }
      const record = toRecord(row)
      feed.publish(record)
      return record
    }

    const heldBy = (id: TaskId, owner: string): Row | undefined => {
      const row = rows.get(id)
      return row !== undefined && row.status === "processing" && row.lockedBy === owner ? row : undefined
    }

    const heartbeat = (owner: string, ids: ReadonlyArray<TaskId>, leaseMillis: number) =>
      Effect.sync((): HeartbeatResult => {
        const lockedUntil = clock.unsafeCurrentTimeMillis() + leaseMillis
        const cancelled: Array<TaskId> = []
        const lost: Array<TaskId> = []
        for (const id of ids) {
          const row = heldBy(id, owner)
          if (row === undefined) {
            lost.push(id)
          } else if (row.cancelRequested) {
            cancelled.push(id)
          } else {
            row.lockedUntil = lockedUntil
            Heap.push(leases, row, lockedUntil, row.version)
          }
        }
        return { cancelled, lost }
      })

    const setProgress = (id: TaskId, owner: string, progress: number) =>
      Effect.sync(() => {
        const row = heldBy(id, owner)
        if (row !== undefined && row.progress !== progress) {
          row.progress = progress
          row.updatedAt = clock.unsafeCurrentTimeMillis()
          changed(row)
        }
      })

    const finish = (row: Row, status: TaskStatus, now: number): void => {
      row.status = status
      row.finishedAt = now
      row.updatedAt = now
      row.lockedBy = null
      row.lockedUntil = -1
      row.version++
    }

    /** Applies a settlement to the row the owner holds; the row, or `undefined` when not held. */
    const settleRow = (id: TaskId, owner: string, settlement: Settlement): Row | undefined => {
      const row = heldBy(id, owner)
      if (row === undefined) return undefined
      const now = clock.unsafeCurrentTimeMillis()
      switch (settlement._tag) {
        case "Completed":
          finish(row, "completed", now)
          row.progress = 100
          row.result = settlement.result
          row.error = null
          break
        case "Failed":
          finish(row, "failed", now)
          row.error = settlement.error
          break
        case "Cancelled":
          finish(row, "cancelled", now)
          break
        case "Retry":
          row.error = settlement.error
          toPending(row, storedDate(settlement.runAt).getTime(), now)
          if (listeners.length > 0) signalWork(row.runAt, owner)
          break
        case "Released":
          toPending(row, now, now)
          if (listeners.length > 0) signalWork(now, owner)
          break
      }
      if (row.status !== "pending" && finishListeners.length > 0) signalFinished(row, owner)
      return row
    }

    const settle = (id: TaskId, owner: string, settlement: Settlement) =>
      Effect.sync((): Option.Option<TaskRecord> => {
        const row = settleRow(id, owner, settlement)
        if (row === undefined) return Option.none()
        const record = toRecord(row)
        feed.publish(record)
        return Option.some(record)
      })

    const settleLocal = (id: TaskId, owner: string, settlement: Settlement): number | undefined => {
      const row = settleRow(id, owner, settlement)
      if (row === undefined) return undefined
      changed(row)
      return row.status === "pending" ? row.runAt : Number.NEGATIVE_INFINITY
    }

    const cancel = (id: TaskId) =>
      Effect.sync((): CancelResult => {
        const row = rows.get(id)
        if (row === undefined) return "notFound"
        switch (row.status) {
          case "pending":
            finish(row, "cancelled", clock.unsafeCurrentTimeMillis())
            leftBacklog()
            changed(row)
            if (finishListeners.length > 0) signalFinished(row, undefined)
            return "cancelled"
          case "processing":
            row.cancelRequested = true
            return "requested"
          default:
            return "finished"
        }
      })

    const requeue = (id: TaskId) =>
      Effect.sync((): RequeueResult => {
        const row = rows.get(id)
        if (row === undefined) return "notFound"
        if (row.status !== "failed" && row.status !== "cancelled") return "notFinished"
        const now = clock.unsafeCurrentTimeMillis()
        row.cancelRequested = false
        row.attempt = 0
        row.progress = 0
        row.result = null
        row.error = null
        row.startedAt = -1
        row.finishedAt = -1
        toPending(row, now, now)
        changed(row)
        if (listeners.length > 0) signalWork(now, undefined)
        return "requeued"
      })

    const deleteFinishedBefore = (status: TaskStatus, cutoff: Date, limit: number) =>
      Effect.sync((): number => {
        const cut = cutoff.getTime()
        let deleted = 0
        for (const [id, row] of rows) {
          if (deleted >= limit) break
          if (row.status === status && row.finishedAt >= 0 && row.finishedAt < cut) {
            rows.delete(id)
            if (row.idempotencyKey !== null) idempotency.delete(row.idempotencyKey)
            deleted++
          }
        }
        return deleted
      })

    const nextRunAt = (names: ReadonlyArray<string>) =>
      Effect.sync((): Option.Option<Date> => {
        const now = clock.unsafeCurrentTimeMillis()
        expireLeases(now)
        let next: number | undefined
        for (const name of names) {
          const q = queues.get(name)
          if (q === undefined) continue
          const ready = readyHead(q, now)
          const at = ready !== undefined ? ready.runAt : delayedHead(q)
          if (at !== undefined && (next === undefined || at < next)) next = at
        }
        if (Heap.size(leases) > 0) {
          const lease = Heap.peekKey(leases)
          if (next === undefined || lease < next) next = lease
        }
        return next === undefined ? Option.none() : Option.some(new Date(next))
      })

    const list = (filter: TaskFilter) =>
      Effect.sync((): ReadonlyArray<TaskRecord> => {
        const statuses = filter.status === undefined
          ? undefined
          : typeof filter.status === "string"
          ? [filter.status]
          : filter.status
        const limit = filter.limit ?? Number.POSITIVE_INFINITY
        const all = Array.from(rows.values())
        const out: Array<TaskRecord> = []
        let i = all.length - 1
        if (filter.cursor !== undefined) {
          while (i >= 0 && all[i]!.id !== filter.cursor) i--
          i--
        }
        for (; i >= 0 && out.length < limit; i--) {
          const row = all[i]!
          if (statuses !== undefined && !statuses.includes(row.status)) continue
          if (filter.name !== undefined && row.name !== filter.name) continue
          out.push(toRecord(row))
        }
        return out
      })

    const getNow = (id: TaskId): TaskRecord | undefined => {
      const row = rows.get(id)
      return row === undefined ? undefined : toRecord(row)
    }

    const insert = (tasks: ReadonlyArray<NewTask>) => Effect.sync(() => insertNow(tasks))
    const get = (id: TaskId) => Effect.sync(() => Option.fromNullable(getNow(id)))
    const serves = (store: TaskStore): boolean =>
      store.insert === insert && store.claim === claim && store.settle === settle && store.get === get

    return TaskStore.of({
      shared: false,
      insert,
      get,
      list,
      claim,
      heartbeat,
      setProgress,
      settle,
      cancel,
      requeue,
      deleteFinishedBefore,
      nextRunAt,
      pendingCount: Effect.sync(() => pending),
      subscribe: feed.subscribe,
      wakeups: Stream.asyncScoped<void>((emit) => attach(listeners, { owner: undefined, wake: () => void emit.single() })),
      onWakeup: (wake, owner) => attach(listeners, { owner, wake }),
      onRoom: (room) => attach(roomListeners, room),
      onFinished: (finished, owner) => attach(finishListeners, { owner, finished }),
      local: { insert: insertNow, claimOne, settle: settleLocal, get: getNow, serves }
    })
  })

/**
 * A memory store with the default options: the embedded default and the test fake.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TaskStore> = Layer.effect(TaskStore, make())

/**
 * A memory store with options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryWith = (options: MemoryTaskStoreOptions): Layer.Layer<TaskStore> =>
  Layer.effect(TaskStore, make(options))
