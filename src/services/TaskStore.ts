/**
 * The persistence port: where records live and how they move through the lifecycle. The engine
 * talks to the store only through this tag; adapters (memory, Postgres, Supabase) implement it.
 *
 * Failure decisions: every operation fails only with `StoreUnavailable` (the backend could not be
 * reached or refused); a transition that does not apply (the task is gone, finished, or leased
 * by another owner) is not an error but an empty result (`Option.none()`, `false`).
 *
 * @since 0.1.0
 */
import type { Option, Scope } from "effect"
import { Context, Effect, Stream } from "effect"
import type { StoreUnavailable } from "./TaskError.js"
import type { NewTask, TaskErrorInfo, TaskFilter, TaskId, TaskRecord, TaskStatus } from "./TaskRecord.js"

/**
 * What `insert` did with one task: `inserted: false` when a task with the same idempotency key
 * existed already, and `id` is then that task's id.
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertResult {
  readonly id: TaskId
  readonly inserted: boolean
}

/**
 * Which runnable tasks to claim, for whom, and for how long.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimOptions {
  /** Only tasks with these names (the handlers the claiming engine has). */
  readonly names: ReadonlyArray<string>
  /** At most this many tasks. */
  readonly limit: number
  /** The claiming engine instance: written to `lockedBy`. */
  readonly owner: string
  /** The lease: `lockedUntil = now + leaseMillis`; an expired lease may be claimed by anyone. */
  readonly leaseMillis: number
}

/**
 * How an attempt ended, as the owner of its lease settles it.
 *
 * - `Completed`: terminal, with the encoded result; progress becomes 100.
 * - `Failed`: terminal, with the error.
 * - `Retry`: back to `pending` at `runAt` (the backoff), with the attempt's error kept.
 * - `Cancelled`: terminal, the running attempt was interrupted by a cancel.
 * - `Released`: back to `pending` now, the attempt was interrupted by a shutdown.
 *
 * @since 0.1.0
 * @category models
 */
export type Settlement =
  | { readonly _tag: "Completed"; readonly result: unknown }
  | { readonly _tag: "Failed"; readonly error: TaskErrorInfo }
  | { readonly _tag: "Retry"; readonly runAt: Date; readonly error: TaskErrorInfo }
  | { readonly _tag: "Cancelled" }
  | { readonly _tag: "Released" }

/**
 * What `cancel` did: a pending task is `cancelled` at once; a task processing under a lease gets
 * its cancel `requested` (the owner interrupts it and settles it as cancelled); a finished task is
 * left alone (`finished`); `notFound` for an unknown id.
 *
 * @since 0.1.0
 * @category models
 */
export type CancelResult = "cancelled" | "requested" | "finished" | "notFound"

/**
 * What `requeue` (a manual retry) did.
 *
 * @since 0.1.0
 * @category models
 */
export type RequeueResult = "requeued" | "notFinished" | "notFound"

/**
 * What a heartbeat found: tasks whose cancel was requested (the owner interrupts them and
 * settles them as cancelled) and tasks whose lease the owner lost (another instance may be
 * running them; the owner stops without settling).
 *
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatResult {
  readonly cancelled: ReadonlyArray<TaskId>
  readonly lost: ReadonlyArray<TaskId>
}

/**
 * What an engine needs of a claimed task to run it (a `TaskRecord` is one).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimedTask {
  readonly id: TaskId
  readonly name: string
  readonly payload: unknown
  readonly attempt: number
}

/**
 * The synchronous forms of a store's hot operations, for a store that lives in the engine's own
 * JavaScript thread (the memory store): each does at once what its Effect twin does when run,
 * and never throws. See `TaskStore.local`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LocalTaskStore {
  /**
   * `insert`, now. `owner`: the inserting engine's instance id, so that the store's `onWakeup` does
   * not call that engine back for work it knows of already.
   */
  readonly insert: (tasks: ReadonlyArray<NewTask>, owner?: string) => ReadonlyArray<InsertResult>
  /**
   * `claim` with a `limit` of 1, now: the claimed task, or `undefined` when none is runnable. Its
   * whole record is not built (`get` gives it): dates and all, it was a tenth of a no-op task.
   */
  readonly claimOne: (names: ReadonlyArray<string>, owner: string, leaseMillis: number) => ClaimedTask | undefined
  /**
   * `settle`, now, without building the settled record (`get` gives it): the task's `runAt`
   * (epoch milliseconds) when it is pending again, `-Infinity` when it ended, `undefined` when the owner
   * no longer held it.
   */
  readonly settle: (id: TaskId, owner: string, settlement: Settlement) => number | undefined
  /** `get`, now. */
  readonly get: (id: TaskId) => TaskRecord | undefined
  /**
   * Whether these are the twins of `store`'s own `insert`, `claim`, `settle` and `get`: a store
   * built by spreading this one and replacing any of them (a wrapper that logs, delays or fails
   * calls) is not served, and an engine then calls its Effects.
   */
  readonly serves: (store: TaskStore) => boolean
}

/**
 * Tasks a store has claimed ahead of demand (the SQL stores' `prefetch`), for an engine to take
 * without an Effect: a claim answered from them costs no round trip, and its Effect and record
 * were most of what the claim of a no-op task cost. See `TaskStore.ahead`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AheadClaims {
  /**
   * A task claimed ahead for a claim of these options (its `limit` is taken as 1), now; or
   * `undefined` when none waits, and the engine then calls `claim`. The task is claimed exactly as
   * `claim` would have answered it.
   */
  readonly take: (options: ClaimOptions) => ClaimedTask | undefined
  /**
   * Whether `store`'s `claim` is this store's own: a store built by spreading this one and
   * replacing `claim` is not bypassed.
   */
  readonly serves: (store: TaskStore) => boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TaskStore {
  /**
   * Whether other processes share this store. An engine on a shared store polls every
   * `pollInterval` as a backstop to `wakeups`; on a private one it never polls.
   */
  readonly shared: boolean
  /** Inserts new pending tasks; an existing idempotency key yields the existing id instead. */
  readonly insert: (tasks: ReadonlyArray<NewTask>) => Effect.Effect<ReadonlyArray<InsertResult>, StoreUnavailable>
  /** The record with this id, if any. */
  readonly get: (id: TaskId) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>
  /** Records matching the filter, newest first. */
  readonly list: (filter: TaskFilter) => Effect.Effect<ReadonlyArray<TaskRecord>, StoreUnavailable>
  /**
   * Atomically moves up to `limit` runnable tasks (pending and due, or processing with an expired
   * lease) to `processing` under a lease, incrementing `attempt`. Order: the aged priority key
   * (`runAt - priority * agingMillis`, see `layerMemory`), then submission order.
   */
  readonly claim: (options: ClaimOptions) => Effect.Effect<ReadonlyArray<TaskRecord>, StoreUnavailable>
  /** Extends the leases of the owner's running tasks; says which ones it must stop. */
  readonly heartbeat: (
    owner: string,
    ids: ReadonlyArray<TaskId>,
    leaseMillis: number
  ) => Effect.Effect<HeartbeatResult, StoreUnavailable>
  /** Records the progress (0..100) of a task the owner is running. Adapters may throttle writes. */
  readonly setProgress: (id: TaskId, owner: string, progress: number) => Effect.Effect<void, StoreUnavailable>
  /** Settles an attempt of a task the owner holds; `none` when it no longer holds it. */
  readonly settle: (
    id: TaskId,
    owner: string,
    settlement: Settlement
  ) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>
  /**
   * Settles attempts of tasks the owner holds, all at once (distinct ids); the results come in
   * the same order, `none` where the owner no longer holds the task. Optional: a shared store
   * offers it so that the engine writes the settlements of many workers in one round trip; without
   * it the engine calls `settle` for each.
   */
  readonly settleMany?: (
    owner: string,
    settlements: ReadonlyArray<readonly [TaskId, Settlement]>
  ) => Effect.Effect<ReadonlyArray<Option.Option<TaskRecord>>, StoreUnavailable>
  /** Cancels a task whoever holds it: see `CancelResult`. */
  readonly cancel: (id: TaskId) => Effect.Effect<CancelResult, StoreUnavailable>
  /** Puts a failed or cancelled task back to pending (attempts start again from zero). */
  readonly requeue: (id: TaskId) => Effect.Effect<RequeueResult, StoreUnavailable>
  /** Deletes up to `limit` records in `status` that finished before `cutoff`; returns how many. */
  readonly deleteFinishedBefore: (
    status: TaskStatus,
    cutoff: Date,
    limit: number
  ) => Effect.Effect<number, StoreUnavailable>
  /** The earliest `runAt` among pending tasks with these names (due or not), if any. */
  readonly nextRunAt: (names: ReadonlyArray<string>) => Effect.Effect<Option.Option<Date>, StoreUnavailable>
  /** How many tasks are pending (the backlog `maxQueued` bounds). */
  readonly pendingCount: Effect.Effect<number, StoreUnavailable>
  /**
   * Subscribes to every change of a record as the store applies it (other instances' too, where
   * the adapter can): the subscription is live once the effect has run, until the scope closes.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<TaskRecord>, never, Scope.Scope>
  /** Signals of new work from elsewhere (other instances); `Stream.never` for a private store. */
  readonly wakeups: Stream.Stream<void>
  /**
   * The signals of `wakeups` as calls of `wake`, for as long as the scope lives (`make` makes it
   * from `wakeups` when the adapter has none of its own: a Stream in between cost an idle engine
   * 0.1 ms ahead of each claim on PostgreSQL, so adapters offer their own). `wake` must be cheap and must not throw. `wake(at)` says the new work falls
   * due at `at` (epoch milliseconds; absent: now). `owner` is the listening engine's instance id:
   * a store that knows which engine made a change (the memory store: every engine attached to it
   * is woken for every other's inserts, releases and retries) need not wake that engine for it.
   */
  readonly onWakeup: (wake: (at?: number) => void, owner?: string) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Calls `room` whenever tasks leave the backlog (claimed or cancelled, by any engine
   * attached to this store), for as long as the scope lives: an engine with `maxQueued` uses it to
   * wake its submits waiting for room. Without it an engine hears only of its own claims and
   * cancels, and on a shared store looks again every `pollInterval`. `room` must be cheap and must
   * not throw. `make`'s default never calls it.
   */
  readonly onRoom: (room: () => void) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Calls `finished` with the record of each task that ends (completed, failed or
   * cancelled) in this store, but for those `owner` settled itself, for as long as the scope
   * lives: an engine uses it so that its `await` of a task another engine ran ends (the memory
   * store offers it; on a shared store an awaiting engine polls instead). `finished` must be cheap
   * and must not throw. `make`'s default never calls it.
   */
  readonly onFinished: (finished: (record: TaskRecord) => void, owner?: string) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Optional: synchronous forms of `insert`, `claim`, `settle` and `get`, for a store in the
   * engine's own thread (the memory store). An engine calls them directly on its hot path: an
   * Effect per store call, and the records and arrays of the general forms, were most of what a
   * no-op task cost on the memory store.
   */
  readonly local?: LocalTaskStore | undefined
  /** Optional: the tasks this store claimed ahead of demand, taken without an Effect. */
  readonly ahead?: AheadClaims | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export const TaskStore: Context.Tag<TaskStore, TaskStore> = Context.GenericTag<TaskStore>("effect-tasks/TaskStore")

/**
 * What an adapter gives `make`: the port, its signal members optional.
 *
 * @since 0.2.0
 * @category models
 */
export type TaskStoreParts =
  & Omit<TaskStore, "onWakeup" | "onRoom" | "onFinished">
  & Partial<Pick<TaskStore, "onWakeup" | "onRoom" | "onFinished">>

const never: Effect.Effect<void, never, Scope.Scope> = Effect.void

/**
 * A store from an adapter's parts, with the defaults of the members it leaves out: `onWakeup`
 * from `wakeups`, and `onRoom` / `onFinished` that never call (an engine then hears only of its
 * own claims and settlements, and a shared store's engine polls). The engine calls every member
 * as it is and never asks whether one is there; the synchronous fast paths (`local`, `ahead`)
 * are the only optional members, each reached through its `serves` check.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (parts: TaskStoreParts): TaskStore => ({
  ...parts,
  onWakeup: parts.onWakeup ??
    ((wake) => Effect.asVoid(Effect.forkScoped(Stream.runForEach(parts.wakeups, () => Effect.sync(() => wake()))))),
  onRoom: parts.onRoom ?? (() => never),
  onFinished: parts.onFinished ?? (() => never)
})
