/**
 * The rows of the memory store and the table that holds them. Each task is one mutable row (times
 * as epoch milliseconds, `-1` for none), changed in place by every transition (those that move it
 * between queues in `MemoryQueues`, the rest in `MemoryTaskStore`); callers get immutable
 * `TaskRecord` snapshots made on the way out. Keeping the long-lived rows free of per-transition
 * allocations is what keeps a large backlog cheap for the garbage collector. The table (rows by
 * id, in insertion order, and ids by idempotency key) is written only here, and answers the
 * store's queries (`list`, the cleanup's `deleteFinishedBefore`).
 *
 * @since 0.1.0
 * @internal
 */
import type { TaskErrorInfo, TaskFilter, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"

/** A task of the memory store. @internal */
export interface Row {
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

const date = (millis: number): Date | null => (millis < 0 ? null : new Date(millis))

/** An immutable snapshot of a row. @internal */
export const toRecord = (row: Row): TaskRecord => ({
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

/** @internal */
export interface MemoryRows {
  /** The rows by id, oldest first: read only outside this module. */
  readonly rows: ReadonlyMap<string, Row>
  /** The id of the task holding each idempotency key. */
  readonly idempotency: ReadonlyMap<string, TaskId>
  /** Adds a new row, and its idempotency key. */
  readonly add: (row: Row) => void
  /** The port's `list`: newest first, from after the cursor. */
  readonly list: (filter: TaskFilter) => ReadonlyArray<TaskRecord>
  /** The port's `deleteFinishedBefore`: how many were deleted. */
  readonly deleteFinishedBefore: (status: TaskStatus, cutoff: Date, limit: number) => number
}

/** An empty table. @internal */
export const make = (): MemoryRows => {
  const rows = new Map<string, Row>()
  const idempotency = new Map<string, TaskId>()

  const add = (row: Row): void => {
    if (row.idempotencyKey !== null) idempotency.set(row.idempotencyKey, row.id)
    rows.set(row.id, row)
  }

  const deleteFinishedBefore = (status: TaskStatus, cutoff: Date, limit: number): number => {
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
  }

  const list = (filter: TaskFilter): ReadonlyArray<TaskRecord> => {
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
  }

  return { rows, idempotency, add, list, deleteFinishedBefore }
}
