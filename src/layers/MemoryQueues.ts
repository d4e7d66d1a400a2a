/**
 * Where the memory store's tasks wait, and the transitions that move them between queues. Each
 * queue is a `Heap`: a FIFO run of in-order pushes beside a binary heap, so the usual case costs
 * O(1). A pending task waits in
 * - `delayed[name]`, by `runAt`, while `runAt` is in the future;
 * - `ready[name]`, by the aged priority key `runAt - priority * agingMillis` and then submission
 *   order, once due (moved there by `claimRow` and `nextAt`).
 * A processing task also sits in `leases`, by `lockedUntil`; once its lease expires it is moved
 * back to `ready` (`expireLeases`) and claimed again. Heap entries are never removed in place: an
 * entry whose version no longer matches its row's is stale and is skipped when it reaches the top
 * (a row's `version` is written only here). `pending` counts the rows in the backlog.
 *
 * @since 0.1.0
 * @internal
 */
import type { TaskStatus } from "../services/TaskRecord.js"
import * as Heap from "./Heap.js"
import type { Row } from "./MemoryRows.js"

interface Queues {
  readonly ready: Heap.Heap<Row>
  readonly delayed: Heap.Heap<Row>
}

const bySeq = (a: Row, b: Row): boolean => a.seq < b.seq

/** @internal */
export interface MemoryQueues {
  /** Queues a new pending row. */
  readonly add: (row: Row, now: number) => void
  /** Makes a row pending again, due at `runAt`, and queues it. */
  readonly toPending: (row: Row, runAt: number, now: number) => void
  /** Ends a row's task: its queue and lease entries turn stale (a pending row's caller calls `leftBacklog`). */
  readonly finish: (row: Row, status: TaskStatus, now: number) => void
  /** A task left the backlog: waiters for room may go on. */
  readonly leftBacklog: () => void
  /** Moves expired leases back to pending (at-least-once delivery). */
  readonly expireLeases: (now: number) => void
  /** Claims the first runnable row of these names, or `undefined`. */
  readonly claimRow: (names: ReadonlyArray<string>, owner: string, now: number, lockedUntil: number) => Row | undefined
  /** Extends the lease of a row being processed. */
  readonly extendLease: (row: Row, lockedUntil: number) => void
  /** When a task of these names is due next, or a lease expires: epoch milliseconds, or `undefined`. */
  readonly nextAt: (names: ReadonlyArray<string>, now: number) => number | undefined
  /** How many tasks are pending. */
  readonly pending: () => number
}

/**
 * Empty queues. `changed` publishes a row that a lease's expiry made pending again; `signalRoom`
 * tells the engines waiting for room that a task left the backlog.
 *
 * @internal
 */
export const make = (agingMillis: number, changed: (row: Row) => void, signalRoom: () => void): MemoryQueues => {
  const queues = new Map<string, Queues>()
  const leases = Heap.make<Row>(bySeq)
  let pending = 0

  const leftBacklog = (): void => {
    pending--
    signalRoom()
  }

  const queuesOf = (name: string): Queues => {
    let q = queues.get(name)
    if (q === undefined) {
      q = { ready: Heap.make(bySeq), delayed: Heap.make(bySeq) }
      queues.set(name, q)
    }
    return q
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
  const add = (row: Row, now: number): void => {
    pending++
    enqueue(row, now)
  }

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

  const extendLease = (row: Row, lockedUntil: number): void => {
    row.lockedUntil = lockedUntil
    Heap.push(leases, row, lockedUntil, row.version)
  }

  const finish = (row: Row, status: TaskStatus, now: number): void => {
    row.status = status
    row.finishedAt = now
    row.updatedAt = now
    row.lockedBy = null
    row.lockedUntil = -1
    row.version++
  }

  const nextAt = (names: ReadonlyArray<string>, now: number): number | undefined => {
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
    return next
  }

  return { add, toPending, finish, leftBacklog, expireLeases, claimRow, extendLease, nextAt, pending: () => pending }
}
