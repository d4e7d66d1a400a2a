/**
 * A `TaskStore` over the SQL functions of the migrations, whatever the driver (`FunctionCaller`):
 * the part of `layerPostgres` that a Supabase store shares. The lifecycle logic is in SQL; this
 * module serves the reads, inserts and the rest one statement each, and its parts decide how
 * often to call the others:
 *
 * - claims are coalesced into one `task_claim`, and with `prefetch` taken ahead of demand into a
 *   local buffer (`SqlClaims`; see `SqlTaskStoreOptions.prefetch`);
 * - settlements are coalesced the same way into one `task_settle`, each task keeping its own
 *   outcome and each caller getting its own record (`SqlSettlements`);
 * - progress writes are throttled: at most one `task_set_progress` per `progressInterval` for the
 *   whole store (the first at once, later ones batched), and an attempt's last progress always
 *   lands, with its settlement if not before (`SqlProgress`);
 * - `subscribe` sees the changes this store makes at once, and those of other instances as the
 *   driver hears of them (`ChangeNotices`: LISTEN on PostgreSQL) and, for any it missed, by reading
 *   what changed every `changePollInterval` (over Supabase, only so): see migration 0011
 *   (`SqlChangeFeed`).
 *
 * @since 0.1.0
 */
import type { Duration, Scope, Stream } from "effect"
import { Effect, Option } from "effect"
import { StoreUnavailable } from "../services/TaskError.js"
import type { NewTask, TaskFilter, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import type { CancelResult, HeartbeatResult, InsertResult, RequeueResult } from "../services/TaskStore.js"
import { make as makeStore, TaskStore } from "../services/TaskStore.js"
import type { ChangeNotices } from "./SqlChangeFeed.js"
import * as SqlChangeFeed from "./SqlChangeFeed.js"
import * as SqlClaims from "./SqlClaims.js"
import * as SqlProgress from "./SqlProgress.js"
import * as SqlSettlements from "./SqlSettlements.js"
import type { SqlStoreContext } from "./SqlStoreContext.js"
import type { FunctionCaller } from "./TaskFunctions.js"
import { toDate, toRecord } from "./TaskFunctions.js"

export type { ChangeNotice, ChangeNotices } from "./SqlChangeFeed.js"


/**
 * Options of a SQL-backed store. Every field is optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqlTaskStoreOptions {
  /**
   * How much waiting one priority level is worth, as in `layerMemory` [60,000 ms]. Every instance
   * sharing a queue should use the same value.
   */
  readonly priorityAgingMillis?: number | undefined
  /**
   * Whose clock decides when tasks are due and leases expire: the database's `now()` (one clock
   * for every instance) or the Effect `Clock` of this process (so `TestClock` drives it) ["database"].
   */
  readonly time?: "database" | "clock" | undefined
  /** The least time between two progress writes of this store ["500 millis"]. */
  readonly progressInterval?: Duration.DurationInput | undefined
  /**
   * Whether settlements wait for the WAL flush (`synchronous_commit`) [true]. `false` is faster and
   * still at-least-once: a database crash may forget the last few hundred milliseconds of
   * settlements, and those tasks run again.
   */
  readonly synchronousSettle?: boolean | undefined
  /** The most claims or settlements in one statement [500]. */
  readonly maxBatch?: number | undefined
  /** Statements of one kind (claims, settlements) in flight at once [2]. */
  readonly maxInFlight?: number | undefined
  /**
   * How many tasks a claim takes ahead of demand, per owner [0: none]. Busy engines then claim
   * one statement for many tasks. What it costs: a task claimed ahead shows as `processing`
   * (leased, attempt counted) before it starts; it goes back to the queue, its claim undone, if
   * it waits longer than half its lease or when the store closes; and the ahead-claims of a busy
   * instance are tasks other instances do not get. A cancel reaches it once it runs. For
   * `nextRunAt`, hence the engine's timer and `drain`, a task claimed ahead is due now: give each
   * engine a store of its own when prefetching.
   */
  readonly prefetch?: number | undefined
  /**
   * While the store has subscribers (`subscribe`, hence `changes`, `watch`, SSE and the
   * dashboard): how often it reads the records changed in the store since its last look, for
   * other instances' changes it did not hear of (a notification missed while LISTEN
   * reconnected; over Supabase, which cannot LISTEN, the only way) ["5 seconds"].
   */
  readonly changePollInterval?: Duration.DurationInput | undefined
}

const cancelResults: ReadonlyArray<CancelResult> = ["cancelled", "requested", "finished", "notFound"]
const requeueResults: ReadonlyArray<RequeueResult> = ["requeued", "notFinished", "notFound"]

const oneOf = <A extends string>(operation: string, allowed: ReadonlyArray<A>, value: string) =>
  (allowed as ReadonlyArray<string>).includes(value)
    ? Effect.succeed(value as A)
    : Effect.fail(new StoreUnavailable({ operation, reason: `unexpected answer ${JSON.stringify(value)}` }))

/**
 * Builds a store over the SQL functions; its fibers (batch dispatchers, progress flushes) live as
 * long as the scope. `wakeups` is the driver's signal of new work from other instances,
 * `onWakeup` (optional) the same signal as callbacks, and `changeNotices` (optional) what the
 * driver hears of other instances' changes, listened to while the store has subscribers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  caller: FunctionCaller,
  wakeups: Stream.Stream<void>,
  options: SqlTaskStoreOptions = {},
  onWakeup?: TaskStore["onWakeup"],
  changeNotices?: ChangeNotices
): Effect.Effect<TaskStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const agingMillis = options.priorityAgingMillis ?? 60_000
    const synchronous = options.synchronousSettle ?? true
    const maxBatch = options.maxBatch ?? 500
    const maxInFlight = options.maxInFlight ?? 2
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const now: () => Date | null = options.time === "clock"
      ? () => new Date(clock.unsafeCurrentTimeMillis())
      : () => null
    const context: SqlStoreContext = {
      caller,
      clock,
      scope,
      now,
      clockTime: options.time === "clock",
      agingMillis,
      maxBatch,
      maxInFlight
    }
    const feed = yield* SqlChangeFeed.make(context, options.changePollInterval, changeNotices)
    const { publish } = feed
    const publishCurrent = (id: TaskId): Effect.Effect<void> =>
      !feed.active() ? Effect.void : Effect.ignore(Effect.map(get(id), (record) => publish(Option.toArray(record))))

    // -- reads ---------------------------------------------------------------------------------
    const get = (id: TaskId): Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable> =>
      Effect.map(caller.call("task_get", { p_id: id }), (rows) => Option.map(Option.fromNullable(rows[0]), toRecord))

    const list = (filter: TaskFilter): Effect.Effect<ReadonlyArray<TaskRecord>, StoreUnavailable> => {
      const statuses = filter.status === undefined
        ? null
        : typeof filter.status === "string"
        ? [filter.status]
        : filter.status
      const limit = filter.limit === undefined || filter.limit === Number.POSITIVE_INFINITY
        ? null
        : Math.max(0, Math.floor(filter.limit))
      return Effect.map(
        caller.call("task_list", {
          p_statuses: statuses,
          p_name: filter.name ?? null,
          p_limit: limit,
          p_cursor: filter.cursor ?? null
        }),
        (rows) => rows.map(toRecord)
      )
    }

    // -- insert --------------------------------------------------------------------------------
    const insert = (tasks: ReadonlyArray<NewTask>): Effect.Effect<ReadonlyArray<InsertResult>, StoreUnavailable> =>
      Effect.suspend(() => {
        if (tasks.length === 0) return Effect.succeed([])
        const args = tasks.map((task) => ({
          id: task.id,
          name: task.name,
          payload: task.payload,
          priority: task.priority,
          run_at: task.runAt.toISOString(),
          idempotency_key: task.idempotencyKey
        }))
        return Effect.flatMap(
          caller.call("task_insert", { p_tasks: args, p_now: now(), p_aging_ms: agingMillis }),
          (rows) => {
            const results: Array<InsertResult> = []
            const inserted: Array<TaskRecord> = []
            for (let i = 0; i < tasks.length; i++) {
              const row = rows[i]
              const task = tasks[i]!
              if (row === undefined || row.id === null) {
                // the task holding the key was deleted between our insert and our lookup
                return Effect.fail(
                  new StoreUnavailable({ operation: "insert", reason: "idempotency key race with a cleanup; retry" })
                )
              }
              results.push({ id: row.id as TaskId, inserted: row.inserted })
              if (row.inserted && feed.active()) {
                const createdAt = toDate(row.created_at) ?? new Date(clock.unsafeCurrentTimeMillis())
                // Dates of the record's own: the caller's `runAt` stays the caller's
                inserted.push({
                  id: task.id,
                  name: task.name,
                  payload: task.payload,
                  status: "pending",
                  attempt: 0,
                  progress: 0,
                  result: null,
                  error: null,
                  priority: task.priority,
                  runAt: new Date(task.runAt.getTime()),
                  createdAt,
                  startedAt: null,
                  finishedAt: null,
                  updatedAt: new Date(createdAt.getTime()),
                  lockedBy: null,
                  lockedUntil: null,
                  idempotencyKey: task.idempotencyKey
                })
              }
            }
            publish(inserted)
            return Effect.succeed(results)
          }
        )
      })

    // -- progress, settlements and claims ----------------------------------------------------------
    const progress = SqlProgress.make(context, publish, options.progressInterval)
    const settlements = yield* SqlSettlements.make(context, synchronous, publish, get, progress.take)
    const { settle, settleMany, unhold } = settlements
    const { ahead, bufferedFor, claim, prefetch } = yield* SqlClaims.make(context, feed, settlements, options.prefetch)

    // -- the rest ---------------------------------------------------------------------------------
    const heartbeat = (
      owner: string,
      ids: ReadonlyArray<TaskId>,
      leaseMillis: number
    ): Effect.Effect<HeartbeatResult, StoreUnavailable> =>
      ids.length === 0
        ? Effect.succeed({ cancelled: [], lost: [] })
        : Effect.map(
          caller.call("task_heartbeat", { p_owner: owner, p_ids: ids, p_lease_ms: Math.ceil(leaseMillis), p_now: now() }),
          (result) => {
            for (const id of result.lost) unhold(owner, id, undefined)
            return { cancelled: result.cancelled as ReadonlyArray<TaskId>, lost: result.lost as ReadonlyArray<TaskId> }
          }
        )

    const cancel = (id: TaskId): Effect.Effect<CancelResult, StoreUnavailable> =>
      caller.call("task_cancel", { p_id: id, p_now: now() }).pipe(
        Effect.flatMap((answer) => oneOf("task_cancel", cancelResults, answer)),
        Effect.tap((result) => (result === "cancelled" ? publishCurrent(id) : Effect.void))
      )

    const requeue = (id: TaskId): Effect.Effect<RequeueResult, StoreUnavailable> =>
      caller.call("task_requeue", { p_id: id, p_now: now(), p_aging_ms: agingMillis }).pipe(
        Effect.flatMap((answer) => oneOf("task_requeue", requeueResults, answer)),
        Effect.tap((result) => (result === "requeued" ? publishCurrent(id) : Effect.void))
      )

    const deleteFinishedBefore = (status: TaskStatus, cutoff: Date, limit: number) =>
      caller.call("task_delete_finished", { p_status: status, p_before: cutoff, p_limit: Math.floor(limit) })

    const nextRunAt = (names: ReadonlyArray<string>): Effect.Effect<Option.Option<Date>, StoreUnavailable> =>
      Effect.map(caller.call("task_next_run_at", { p_names: names }), (value) => {
        const next = toDate(value)
        if (prefetch > 0 && bufferedFor(names)) {
          const now_ = clock.unsafeCurrentTimeMillis()
          return Option.some(next === null || next.getTime() > now_ ? new Date(now_) : next)
        }
        return Option.fromNullable(next)
      })

    return makeStore({
      shared: true,
      insert,
      get,
      list,
      claim,
      heartbeat,
      setProgress: progress.setProgress,
      settle,
      settleMany,
      cancel,
      requeue,
      deleteFinishedBefore,
      nextRunAt,
      pendingCount: caller.call("task_pending_count", {}),
      subscribe: feed.subscribe,
      ahead,
      wakeups,
      ...(onWakeup === undefined ? {} : { onWakeup })
    })
  })
