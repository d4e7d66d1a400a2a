/**
 * The in-memory `TaskStore`: the embedded default and the test fake. One actor owns the state (a
 * `Map` of entries and per-name heaps) and changes it only inside `Effect.sync`, so every
 * operation is atomic; time comes from the `Clock` captured when the layer is built, so
 * `TestClock` drives leases, delays and backoffs.
 *
 * Where a pending task waits:
 * - `delayed[name]`, a heap by `runAt`, while `runAt` is in the future;
 * - `ready[name]`, a heap by the aged priority key `runAt - priority * agingMillis` and then
 *   submission order, once due (moved there by `claim` and `nextRunAt`).
 * A processing task also sits in `leases`, a heap by `lockedUntil`; once its lease expires it is
 * moved back to `ready` and claimed again. Heap slots are never removed in place: a slot whose
 * version no longer matches its entry's is stale and is skipped when it reaches the top.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Option, PubSub, Stream } from "effect"
import type {
  CancelResult,
  ClaimOptions,
  HeartbeatResult,
  InsertResult,
  RequeueResult,
  Settlement
} from "../services/TaskStore.js"
import { TaskStore } from "../services/TaskStore.js"
import type { NewTask, TaskFilter, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
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

interface Entry {
  record: TaskRecord
  readonly seq: number
  /** Bumped whenever the entry is queued again, so that older heap slots turn stale. */
  version: number
  cancelRequested: boolean
}

interface Slot {
  readonly entry: Entry
  readonly version: number
  /** `runAt` (delayed heap), the aged priority key (ready heap) or `lockedUntil` (leases). */
  readonly key: number
}

interface Queues {
  readonly ready: Heap.Heap<Slot>
  readonly delayed: Heap.Heap<Slot>
}

const byKeyThenSeq = (a: Slot, b: Slot): boolean => a.key < b.key || (a.key === b.key && a.entry.seq < b.entry.seq)

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
    const pubsub = yield* PubSub.unbounded<TaskRecord>()
    const entries = new Map<string, Entry>()
    const idempotency = new Map<string, TaskId>()
    const queues = new Map<string, Queues>()
    const leases = Heap.make<Slot>(byKeyThenSeq)
    let seq = 0
    let pending = 0
    let subscribers = 0

    const queuesOf = (name: string): Queues => {
      let q = queues.get(name)
      if (q === undefined) {
        q = { ready: Heap.make(byKeyThenSeq), delayed: Heap.make(byKeyThenSeq) }
        queues.set(name, q)
      }
      return q
    }

    const publish = (record: TaskRecord): void => {
      if (subscribers > 0) pubsub.unsafeOffer(record)
    }

    const update = (entry: Entry, record: TaskRecord): TaskRecord => {
      entry.record = record
      publish(record)
      return record
    }

    /** Queues a pending entry: in `ready` if due, else in `delayed`. */
    const enqueue = (entry: Entry, now: number): void => {
      const version = ++entry.version
      const record = entry.record
      const runAt = record.runAt.getTime()
      const q = queuesOf(record.name)
      if (runAt <= now) {
        Heap.push(q.ready, { entry, version, key: runAt - record.priority * agingMillis })
      } else {
        Heap.push(q.delayed, { entry, version, key: runAt })
      }
    }

    const isPendingSlot = (slot: Slot): boolean =>
      slot.version === slot.entry.version && slot.entry.record.status === "pending"

    /** Moves expired leases back to pending (at-least-once delivery). */
    const expireLeases = (now: number): void => {
      while (true) {
        const top = Heap.peek(leases)
        if (top === undefined) return
        const entry = top.entry
        const live = top.version === entry.version && entry.record.status === "processing" &&
          entry.record.lockedUntil !== null && entry.record.lockedUntil.getTime() === top.key
        if (live && top.key > now) return
        Heap.pop(leases)
        if (!live) continue
        const date = new Date(now)
        update(entry, { ...entry.record, status: "pending", lockedBy: null, lockedUntil: null, runAt: date, updatedAt: date })
        pending++
        enqueue(entry, now)
      }
    }

    /** The first valid ready slot of a name after promoting its due delayed tasks. */
    const readyHead = (q: Queues, now: number): Slot | undefined => {
      while (true) {
        const top = Heap.peek(q.delayed)
        if (top === undefined) break
        if (!isPendingSlot(top)) {
          Heap.pop(q.delayed)
          continue
        }
        if (top.key > now) break
        Heap.pop(q.delayed)
        enqueue(top.entry, now)
      }
      while (true) {
        const top = Heap.peek(q.ready)
        if (top === undefined) return undefined
        if (isPendingSlot(top)) return top
        Heap.pop(q.ready)
      }
    }

    const delayedHead = (q: Queues): Slot | undefined => {
      while (true) {
        const top = Heap.peek(q.delayed)
        if (top === undefined || isPendingSlot(top)) return top
        Heap.pop(q.delayed)
      }
    }

    const newRecord = (task: NewTask, now: Date): TaskRecord => ({
      id: task.id,
      name: task.name,
      payload: task.payload,
      status: "pending",
      attempt: 0,
      progress: 0,
      result: null,
      error: null,
      priority: task.priority,
      runAt: task.runAt,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
      lockedBy: null,
      lockedUntil: null,
      idempotencyKey: task.idempotencyKey
    })

    const insert = (tasks: ReadonlyArray<NewTask>) =>
      Effect.sync((): ReadonlyArray<InsertResult> => {
        const nowMillis = clock.unsafeCurrentTimeMillis()
        const now = new Date(nowMillis)
        const results: Array<InsertResult> = []
        for (const task of tasks) {
          if (task.idempotencyKey !== null) {
            const existing = idempotency.get(task.idempotencyKey)
            if (existing !== undefined) {
              results.push({ id: existing, inserted: false })
              continue
            }
            idempotency.set(task.idempotencyKey, task.id)
          }
          const entry: Entry = { record: newRecord(task, now), seq: seq++, version: 0, cancelRequested: false }
          entries.set(task.id, entry)
          pending++
          enqueue(entry, nowMillis)
          publish(entry.record)
          results.push({ id: task.id, inserted: true })
        }
        return results
      })

    const claim = (options: ClaimOptions) =>
      Effect.sync((): ReadonlyArray<TaskRecord> => {
        const nowMillis = clock.unsafeCurrentTimeMillis()
        expireLeases(nowMillis)
        const claimed: Array<TaskRecord> = []
        let now: Date | undefined
        const lockedUntil = nowMillis + options.leaseMillis
        while (claimed.length < options.limit) {
          let best: Slot | undefined
          let bestQueues: Queues | undefined
          for (const name of options.names) {
            const q = queues.get(name)
            if (q === undefined) continue
            const head = readyHead(q, nowMillis)
            if (head !== undefined && (best === undefined || byKeyThenSeq(head, best))) {
              best = head
              bestQueues = q
            }
          }
          if (best === undefined || bestQueues === undefined) break
          Heap.pop(bestQueues.ready)
          const entry = best.entry
          now ??= new Date(nowMillis)
          const version = ++entry.version
          const record = update(entry, {
            ...entry.record,
            status: "processing",
            attempt: entry.record.attempt + 1,
            startedAt: now,
            updatedAt: now,
            lockedBy: options.owner,
            lockedUntil: new Date(lockedUntil)
          })
          pending--
          Heap.push(leases, { entry, version, key: lockedUntil })
          claimed.push(record)
        }
        return claimed
      })

    const heldBy = (id: TaskId, owner: string): Entry | undefined => {
      const entry = entries.get(id)
      return entry !== undefined && entry.record.status === "processing" && entry.record.lockedBy === owner
        ? entry
        : undefined
    }

    const heartbeat = (owner: string, ids: ReadonlyArray<TaskId>, leaseMillis: number) =>
      Effect.sync((): HeartbeatResult => {
        const nowMillis = clock.unsafeCurrentTimeMillis()
        const lockedUntil = nowMillis + leaseMillis
        const cancelled: Array<TaskId> = []
        const lost: Array<TaskId> = []
        for (const id of ids) {
          const entry = heldBy(id, owner)
          if (entry === undefined) {
            lost.push(id)
            continue
          }
          if (entry.cancelRequested) {
            cancelled.push(id)
            continue
          }
          entry.record = { ...entry.record, lockedUntil: new Date(lockedUntil) }
          Heap.push(leases, { entry, version: entry.version, key: lockedUntil })
        }
        return { cancelled, lost }
      })

    const setProgress = (id: TaskId, owner: string, progress: number) =>
      Effect.sync(() => {
        const entry = heldBy(id, owner)
        if (entry !== undefined && entry.record.progress !== progress) {
          update(entry, { ...entry.record, progress, updatedAt: new Date(clock.unsafeCurrentTimeMillis()) })
        }
      })

    const settle = (id: TaskId, owner: string, settlement: Settlement) =>
      Effect.sync((): Option.Option<TaskRecord> => {
        const entry = heldBy(id, owner)
        if (entry === undefined) return Option.none()
        const nowMillis = clock.unsafeCurrentTimeMillis()
        const now = new Date(nowMillis)
        const base = { ...entry.record, updatedAt: now, lockedBy: null, lockedUntil: null }
        entry.version++
        switch (settlement._tag) {
          case "Completed":
            return Option.some(update(entry, {
              ...base,
              status: "completed",
              progress: 100,
              result: settlement.result,
              error: null,
              finishedAt: now
            }))
          case "Failed":
            return Option.some(update(entry, { ...base, status: "failed", error: settlement.error, finishedAt: now }))
          case "Cancelled":
            return Option.some(update(entry, { ...base, status: "cancelled", finishedAt: now }))
          case "Retry":
          case "Released": {
            const runAt = settlement._tag === "Retry" ? settlement.runAt : now
            const error = settlement._tag === "Retry" ? settlement.error : entry.record.error
            const record = update(entry, { ...base, status: "pending", runAt, error })
            pending++
            enqueue(entry, nowMillis)
            return Option.some(record)
          }
        }
      })

    const cancel = (id: TaskId) =>
      Effect.sync((): CancelResult => {
        const entry = entries.get(id)
        if (entry === undefined) return "notFound"
        switch (entry.record.status) {
          case "pending": {
            const now = new Date(clock.unsafeCurrentTimeMillis())
            entry.version++
            pending--
            update(entry, { ...entry.record, status: "cancelled", finishedAt: now, updatedAt: now })
            return "cancelled"
          }
          case "processing":
            entry.cancelRequested = true
            return "requested"
          default:
            return "finished"
        }
      })

    const requeue = (id: TaskId) =>
      Effect.sync((): RequeueResult => {
        const entry = entries.get(id)
        if (entry === undefined) return "notFound"
        if (entry.record.status !== "failed" && entry.record.status !== "cancelled") return "notFinished"
        const nowMillis = clock.unsafeCurrentTimeMillis()
        const now = new Date(nowMillis)
        entry.cancelRequested = false
        update(entry, {
          ...entry.record,
          status: "pending",
          attempt: 0,
          progress: 0,
          result: null,
          error: null,
          runAt: now,
          startedAt: null,
          finishedAt: null,
          updatedAt: now
        })
        pending++
        enqueue(entry, nowMillis)
        return "requeued"
      })

    const deleteFinishedBefore = (status: TaskStatus, cutoff: Date, limit: number) =>
      Effect.sync((): number => {
        const cut = cutoff.getTime()
        let deleted = 0
        for (const [id, entry] of entries) {
          if (deleted >= limit) break
          const record = entry.record
          if (record.status === status && record.finishedAt !== null && record.finishedAt.getTime() < cut) {
            entries.delete(id)
            if (record.idempotencyKey !== null) idempotency.delete(record.idempotencyKey)
            deleted++
          }
        }
        return deleted
      })

    const nextRunAt = (names: ReadonlyArray<string>) =>
      Effect.sync((): Option.Option<Date> => {
        const nowMillis = clock.unsafeCurrentTimeMillis()
        expireLeases(nowMillis)
        let next: number | undefined
        for (const name of names) {
          const q = queues.get(name)
          if (q === undefined) continue
          const ready = readyHead(q, nowMillis)
          const at = ready !== undefined ? ready.entry.record.runAt.getTime() : delayedHead(q)?.key
          if (at !== undefined && (next === undefined || at < next)) next = at
        }
        const lease = Heap.peek(leases)
        if (lease !== undefined && (next === undefined || lease.key < next)) next = lease.key
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
        const all = Array.from(entries.values())
        const out: Array<TaskRecord> = []
        let i = all.length - 1
        if (filter.cursor !== undefined) {
          while (i >= 0 && all[i]!.record.id !== filter.cursor) i--
          i--
        }
        for (; i >= 0 && out.length < limit; i--) {
          const record = all[i]!.record
          if (statuses !== undefined && !statuses.includes(record.status)) continue
          if (filter.name !== undefined && record.name !== filter.name) continue
          out.push(record)
        }
        return out
      })

    const subscribe = Effect.gen(function*() {
      const dequeue = yield* PubSub.subscribe(pubsub)
      yield* Effect.acquireRelease(Effect.sync(() => subscribers++), () => Effect.sync(() => subscribers--))
      return Stream.fromQueue(dequeue)
    })

    return TaskStore.of({
      shared: false,
      insert,
      get: (id) => Effect.sync(() => Option.fromNullable(entries.get(id)?.record)),
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
      subscribe,
      wakeups: Stream.never
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
