/**
 * The SQL functions the migrations define (`task_insert`, `task_claim`, ...), as the TypeScript
 * side sees them: each one's named parameters with their SQL types, the shape of their rows, and
 * a `FunctionCaller`, the one thing a SQL-backed store needs from its driver. `layerPostgres`
 * calls them through @effect/sql-pg; `layerSupabase` through `client.rpc(name, args)`: same
 * names, same arguments, so the lifecycle logic lives once, in SQL.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { TaskErrorInfo, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import { maxTimeMillis, storedDate } from "../services/TaskRecord.js"

/**
 * The SQL type of a parameter, which tells a driver how to pass the value: `jsonb` values are
 * plain JSON data, `timestamptz` values are `Date`s (or `null`: the database's `now()`).
 *
 * @since 0.1.0
 * @category models
 */
export type ParamType =
  | "text"
  | "text[]"
  | "jsonb"
  | "timestamptz"
  | "bigint"
  | "integer"
  | "boolean"
  | "double precision[]"

/**
 * One task for `task_insert`.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertArg {
  readonly id: string
  readonly name: string
  readonly payload: unknown
  readonly priority: number
  /** ISO 8601. */
  readonly run_at: string
  readonly idempotency_key: string | null
}

/**
 * How an attempt ended, as `task_settle` takes it: `returned` undoes a claim whose task never
 * started (see `task_settle`).
 *
 * @since 0.1.0
 * @category models
 */
export type SettleOutcome = "completed" | "failed" | "cancelled" | "retry" | "released" | "returned"

/**
 * One progress update for `task_set_progress`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProgressArg {
  readonly id: string
  readonly owner: string
  readonly progress: number
}

/**
 * A point in time as a driver gives it: epoch milliseconds, a `Date` or an ISO 8601 string.
 *
 * @since 0.1.0
 * @category models
 */
export type Timestamp = number | Date | string

/**
 * A task as the functions return it (`task_row`, migration 0008): timestamps as milliseconds since
 * the epoch, which every driver parses at once (a `timestamptz` costs node-postgres a regular
 * expression per value); `Date`s and ISO strings are accepted too.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskRow {
  readonly id: string
  readonly name: string
  readonly payload: unknown
  readonly status: string
  readonly attempt: number
  readonly progress: number
  readonly result: unknown
  readonly error: unknown
  readonly priority: number
  readonly run_at: Timestamp
  readonly created_at: Timestamp
  readonly started_at: Timestamp | null
  readonly finished_at: Timestamp | null
  readonly updated_at: Timestamp
  readonly locked_by: string | null
  readonly locked_until: Timestamp | null
  readonly idempotency_key: string | null
}

/**
 * A row of `task_claim` (`task_claimed`, migration 0009): what a claim does not already tell. `at`
 * is the claim's time, the task's `started_at` and `updated_at`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimedRow {
  readonly id: string
  readonly name: string
  readonly payload: unknown
  readonly attempt: number
  readonly progress: number
  readonly error: unknown
  readonly priority: number
  readonly run_at: Timestamp
  readonly created_at: Timestamp
  readonly idempotency_key: string | null
  readonly at: Timestamp
  readonly locked_until: Timestamp
}

/**
 * A row of `task_settle`: a settled task's new status, progress and run_at, and `at`, the
 * settlement's time (its `updated_at`, and its `finished_at` when final).
 *
 * @since 0.1.0
 * @category models
 */
export interface SettledRow {
  readonly id: string
  readonly status: string
  readonly progress: number
  readonly run_at: Timestamp
  readonly at: Timestamp
}

/**
 * A row of `task_insert`.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertRow {
  readonly id: string | null
  readonly inserted: boolean
  readonly created_at: Date | string | null
}

/**
 * The arguments of each function, by name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Args {
  readonly task_insert: {
    readonly p_tasks: ReadonlyArray<InsertArg>
    readonly p_now: Date | null
    readonly p_aging_ms: number
  }
  readonly task_cancel: { readonly p_id: string; readonly p_now: Date | null }
  readonly task_requeue: { readonly p_id: string; readonly p_now: Date | null; readonly p_aging_ms: number }
  readonly task_claim: {
    readonly p_owner: string
    readonly p_names: ReadonlyArray<string>
    readonly p_limit: number
    readonly p_lease_ms: number
    readonly p_now: Date | null
    readonly p_aging_ms: number
  }
  readonly task_heartbeat: {
    readonly p_owner: string
    readonly p_ids: ReadonlyArray<string>
    readonly p_lease_ms: number
    readonly p_now: Date | null
  }
  readonly task_set_progress: { readonly p_updates: ReadonlyArray<ProgressArg>; readonly p_now: Date | null }
  readonly task_settle: {
    readonly p_owners: ReadonlyArray<string>
    readonly p_ids: ReadonlyArray<string>
    readonly p_outcomes: ReadonlyArray<SettleOutcome>
    /** The result (completed) or the error (failed, retry) of each settlement, or null. */
    readonly p_values: ReadonlyArray<unknown>
    /** A retry's due time, epoch milliseconds, or null. */
    readonly p_run_ats: ReadonlyArray<number | null>
    /** The attempt's last progress when a throttled write had not landed yet, or null. */
    readonly p_progress: ReadonlyArray<number | null>
    readonly p_now: Date | null
    readonly p_aging_ms: number
    readonly p_synchronous: boolean
  }
  readonly task_get: { readonly p_id: string }
  readonly task_list: {
    readonly p_statuses: ReadonlyArray<string> | null
    readonly p_name: string | null
    readonly p_limit: number | null
    readonly p_cursor: string | null
  }
  readonly task_next_run_at: { readonly p_names: ReadonlyArray<string> }
  readonly task_pending_count: Record<string, never>
  readonly task_delete_finished: { readonly p_status: string; readonly p_before: Date; readonly p_limit: number }
  readonly task_feed_subscribe: { readonly p_id: string; readonly p_ttl_ms: number }
  readonly task_feed_unsubscribe: { readonly p_id: string }
  readonly task_changed: { readonly p_ids: ReadonlyArray<string> }
  readonly task_changed_since: { readonly p_since: Date; readonly p_limit: number }
}

/**
 * What each function returns: rows (`SETOF` / `TABLE`) or one value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Results {
  readonly task_insert: ReadonlyArray<InsertRow>
  readonly task_cancel: string
  readonly task_requeue: string
  readonly task_claim: ReadonlyArray<ClaimedRow>
  readonly task_heartbeat: { readonly cancelled: ReadonlyArray<string>; readonly lost: ReadonlyArray<string> }
  readonly task_set_progress: ReadonlyArray<TaskRow>
  readonly task_settle: ReadonlyArray<SettledRow>
  readonly task_get: ReadonlyArray<TaskRow>
  readonly task_list: ReadonlyArray<TaskRow>
  readonly task_next_run_at: Date | string | null
  readonly task_pending_count: number
  readonly task_delete_finished: number
  /** The database's time, epoch milliseconds. */
  readonly task_feed_subscribe: number
  readonly task_feed_unsubscribe: number
  readonly task_changed: ReadonlyArray<TaskRow>
  readonly task_changed_since: ReadonlyArray<TaskRow>
}

/**
 * The name of a function the migrations define.
 *
 * @since 0.1.0
 * @category models
 */
export type Name = keyof Args

/**
 * A function's signature: its parameters in order, with their SQL types, and whether it returns
 * rows or one value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signature<F extends Name> {
  readonly params: ReadonlyArray<readonly [keyof Args[F] & string, ParamType]>
  readonly returns: "rows" | "value"
}

/**
 * Every function's signature, as the migrations declare it.
 *
 * @since 0.1.0
 * @category constants
 */
export const signatures: { readonly [F in Name]: Signature<F> } = {
  task_insert: {
    params: [["p_tasks", "jsonb"], ["p_now", "timestamptz"], ["p_aging_ms", "bigint"]],
    returns: "rows"
  },
  task_cancel: { params: [["p_id", "text"], ["p_now", "timestamptz"]], returns: "value" },
  task_requeue: { params: [["p_id", "text"], ["p_now", "timestamptz"], ["p_aging_ms", "bigint"]], returns: "value" },
  task_claim: {
    params: [
      ["p_owner", "text"],
      ["p_names", "text[]"],
      ["p_limit", "integer"],
      ["p_lease_ms", "bigint"],
      ["p_now", "timestamptz"],
      ["p_aging_ms", "bigint"]
    ],
    returns: "rows"
  },
  task_heartbeat: {
    params: [["p_owner", "text"], ["p_ids", "text[]"], ["p_lease_ms", "bigint"], ["p_now", "timestamptz"]],
    returns: "value"
  },
  task_set_progress: { params: [["p_updates", "jsonb"], ["p_now", "timestamptz"]], returns: "rows" },
  task_settle: {
    params: [
      ["p_owners", "text[]"],
      ["p_ids", "text[]"],
      ["p_outcomes", "text[]"],
      ["p_values", "jsonb"],
      ["p_run_ats", "double precision[]"],
      ["p_progress", "double precision[]"],
      ["p_now", "timestamptz"],
      ["p_aging_ms", "bigint"],
      ["p_synchronous", "boolean"]
    ],
    returns: "rows"
  },
  task_get: { params: [["p_id", "text"]], returns: "rows" },
  task_list: {
    params: [["p_statuses", "text[]"], ["p_name", "text"], ["p_limit", "integer"], ["p_cursor", "text"]],
    returns: "rows"
  },
  task_next_run_at: { params: [["p_names", "text[]"]], returns: "value" },
  task_pending_count: { params: [], returns: "value" },
  task_delete_finished: {
    params: [["p_status", "text"], ["p_before", "timestamptz"], ["p_limit", "integer"]],
    returns: "value"
  },
  task_feed_subscribe: { params: [["p_id", "text"], ["p_ttl_ms", "bigint"]], returns: "value" },
  task_feed_unsubscribe: { params: [["p_id", "text"]], returns: "value" },
  task_changed: { params: [["p_ids", "text[]"]], returns: "rows" },
  task_changed_since: { params: [["p_since", "timestamptz"], ["p_limit", "integer"]], returns: "rows" }
}

/**
 * Calls one of the functions with named arguments. Fails with `StoreUnavailable` (operation: the
 * function's name) when the database cannot be reached or refuses the call.
 *
 * @since 0.1.0
 * @category models
 */
export interface FunctionCaller {
  readonly call: <F extends Name>(name: F, args: Args[F]) => Effect.Effect<Results[F], StoreUnavailable>
}

// a row's time that is none or out of range (a hand-written 'infinity') is clamped, not an Invalid Date
const date = (value: Timestamp): Date => {
  if (typeof value === "number" && value >= 0 && value <= maxTimeMillis) return new Date(value)
  return storedDate(value)
}

const dateOrNull = (value: Timestamp | null | undefined): Date | null =>
  value === null || value === undefined ? null : date(value)

/**
 * A `Date` from a timestamp as a driver gives it, or `null`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const toDate: (value: Timestamp | null | undefined) => Date | null = dateOrNull

/**
 * The record of a row. Rows come from our own functions, so this is a mapping, not a validation:
 * it runs for every claimed and settled task and stays cheap.
 *
 * @since 0.1.0
 * @category decoding
 */
export const toRecord = (row: TaskRow): TaskRecord => ({
  id: row.id as TaskId,
  name: row.name,
  payload: row.payload,
  status: row.status as TaskStatus,
  attempt: row.attempt,
  progress: row.progress,
  result: row.result,
  error: row.error as TaskErrorInfo | null,
  priority: row.priority,
  runAt: date(row.run_at),
  createdAt: date(row.created_at),
  startedAt: dateOrNull(row.started_at),
  finishedAt: dateOrNull(row.finished_at),
  updatedAt: date(row.updated_at),
  lockedBy: row.locked_by,
  lockedUntil: dateOrNull(row.locked_until),
  idempotencyKey: row.idempotency_key
})

/**
 * The record of a task `owner` claimed, from its `task_claim` row: processing, held by `owner`,
 * started at the claim's time.
 *
 * @since 0.1.0
 * @category decoding
 */
export const toClaimedRecord = (row: ClaimedRow, owner: string): TaskRecord => {
  // a `Date` of its own per field and record: a `Date` is mutable, and records shared between
  // callers (and stores) must not change under one another (`setTime`)
  return {
    id: row.id as TaskId,
    name: row.name,
    payload: row.payload,
    status: "processing",
    attempt: row.attempt,
    progress: row.progress,
    result: null,
    error: row.error as TaskErrorInfo | null,
    priority: row.priority,
    runAt: date(row.run_at),
    createdAt: date(row.created_at),
    startedAt: date(row.at),
    finishedAt: null,
    updatedAt: date(row.at),
    lockedBy: owner,
    lockedUntil: date(row.locked_until),
    idempotencyKey: row.idempotency_key
  }
}
