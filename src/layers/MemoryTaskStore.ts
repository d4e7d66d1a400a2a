/**
 * The in-memory `TaskStore`: the embedded default and the test fake. One actor owns the state and
 * changes it only inside `Effect.sync` (or in the synchronous calls of `local`, which the engine
 * makes from its own fibers), so every operation is atomic; time comes from the `Clock` captured
 * when the layer is built, so `TestClock` drives leases, delays and backoffs.
 *
 * This module holds the port's operations and what a settlement, progress, cancel or requeue
 * records on a task's row; the rows and their table are `MemoryRows`, where a task waits (the
 * queues, the leases, the backlog count) is `MemoryQueues`, and the signals to the engines that
 * share the store (`onWakeup`, `onRoom`, `onFinished`) are `MemorySignals`.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option } from "effect"
import type {
  CancelResult,
  ClaimedTask,
  ClaimOptions,
  HeartbeatResult,
  InsertResult,
  RequeueResult,
  Settlement
} from "../services/TaskStore.js"
import { make as makeStore, TaskStore } from "../services/TaskStore.js"
import type { NewTask, TaskFilter, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import { storedDate } from "../services/TaskRecord.js"
import * as ChangeFeed from "./ChangeFeed.js"
import * as MemoryQueues from "./MemoryQueues.js"
import type { Row } from "./MemoryRows.js"
import * as MemoryRows from "./MemoryRows.js"
import { toRecord } from "./MemoryRows.js"
import * as MemorySignals from "./MemorySignals.js"

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
    const table = MemoryRows.make()
    const { idempotency, rows } = table
    let seq = 0
    const signals = MemorySignals.make()
    const { finishListeners, listeners, signalFinished, signalWork } = signals

    const changed = (row: Row): void => {
      if (feed.active()) feed.publish(toRecord(row))
    }

    const queues = MemoryQueues.make(agingMillis, changed, signals.signalRoom)
    const { claimRow, expireLeases, finish, toPending } = queues

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
        table.add(row)
        queues.add(row, now)
        changed(row)
        if (row.runAt < due) due = row.runAt
        results.push({ id: task.id, inserted: true })
      }
      if (due !== Number.POSITIVE_INFINITY && listeners.length > 0) signalWork(due, owner)
      return results
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
            queues.extendLease(row, lockedUntil)
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
            queues.leftBacklog()
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
      Effect.sync((): number => table.deleteFinishedBefore(status, cutoff, limit))

    const nextRunAt = (names: ReadonlyArray<string>) =>
      Effect.sync((): Option.Option<Date> => {
        const now = clock.unsafeCurrentTimeMillis()
        expireLeases(now)
        const next = queues.nextAt(names, now)
        return next === undefined ? Option.none() : Option.some(new Date(next))
      })

    const list = (filter: TaskFilter) => Effect.sync((): ReadonlyArray<TaskRecord> => table.list(filter))

    const getNow = (id: TaskId): TaskRecord | undefined => {
      const row = rows.get(id)
      return row === undefined ? undefined : toRecord(row)
    }

    const insert = (tasks: ReadonlyArray<NewTask>) => Effect.sync(() => insertNow(tasks))
    const get = (id: TaskId) => Effect.sync(() => Option.fromNullable(getNow(id)))
    const serves = (store: TaskStore): boolean =>
      store.insert === insert && store.claim === claim && store.settle === settle && store.get === get

    return makeStore({
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
      pendingCount: Effect.sync(() => queues.pending()),
      subscribe: feed.subscribe,
      ...signals.port,
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
