/**
 * A `TaskStore` over the SQL functions of the migrations, whatever the driver (`FunctionCaller`):
 * the part of `layerPostgres` that a Supabase store shares. The lifecycle logic is in SQL; this
 * module decides how often to call it:
 *
 * - claims are coalesced: concurrent `claim` calls of one owner (an engine's workers each ask for
 *   one task) become one `task_claim` of their summed limits, whose rows are shared out in order;
 *   with `prefetch`, a claim also takes that many tasks more, kept in a local buffer from which
 *   the next claims are answered at once (an engine takes them without an Effect:
 *   `TaskStore.ahead`), and a claim ahead refills it in the background once a quarter of it is
 *   used, so a busy engine does not stop at an empty buffer (see `SqlTaskStoreOptions.prefetch`);
 * - settlements are coalesced the same way into one `task_settle`, each task keeping its own
 *   outcome and each caller getting its own record;
 * - progress writes are throttled: at most one `task_set_progress` per `progressInterval` for the
 *   whole store (the first at once, later ones batched), and an attempt's last progress always
 *   lands, with its settlement if not before;
 * - `subscribe` sees the changes this store makes at once, and those of other instances as the
 *   driver hears of them (`ChangeNotices`: LISTEN on PostgreSQL) and, for any it missed, by reading
 *   what changed every `changePollInterval` (over Supabase, only so): see migration 0011.
 *
 * @since 0.1.0
 */
import type { Stream } from "effect"
import { Deferred, Duration, Effect, Exit, Fiber, FiberId, Option, Queue, Runtime, Scope } from "effect"
import { StoreUnavailable } from "../services/TaskError.js"
import type { NewTask, TaskErrorInfo, TaskFilter, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import type {
  AheadClaims,
  CancelResult,
  ClaimedTask,
  ClaimOptions,
  HeartbeatResult,
  InsertResult,
  RequeueResult,
  Settlement
} from "../services/TaskStore.js"
import { TaskStore } from "../services/TaskStore.js"
import * as Batcher from "./Batcher.js"
import * as ChangeFeed from "./ChangeFeed.js"
import type { Args, ClaimedRow, FunctionCaller, ProgressArg, SettledRow, SettleOutcome } from "./TaskFunctions.js"
import { toClaimedRecord, toDate, toRecord } from "./TaskFunctions.js"

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

/**
 * What a driver heard of other instances' changes: these tasks changed (their `updated_at` in
 * epoch milliseconds), or something may have changed unheard (`Resync`: the listener (re)started,
 * or a change too big to name), which the store answers by reading what changed lately.
 *
 * @since 0.1.0
 * @category models
 */
export type ChangeNotice =
  | { readonly _tag: "Changed"; readonly tasks: ReadonlyArray<readonly [id: string, updatedAt: number]> }
  | { readonly _tag: "Resync" }

/**
 * A driver's source of `ChangeNotice`s: calls `notice` for each, for as long as the scope lives.
 *
 * @since 0.1.0
 * @category models
 */
export type ChangeNotices = (notice: (notice: ChangeNotice) => void) => Effect.Effect<void, never, Scope.Scope>

/** What the feed published of a task last: it never publishes the same version twice, nor an older one. */
interface Version {
  readonly updatedAt: number
  readonly status: string
  readonly progress: number
  readonly attempt: number
}

/** How many tasks' versions the feed remembers. */
const maxVersions = 10_000

/** How far before its last look a store looks again: a statement's start (its `updated_at`) may precede its commit. */
const changeMarginMillis = 2_000

/** A port settlement, or the store's own undoing of a claim whose task never started. */
type Outcome = Settlement | { readonly _tag: "Returned" }

interface SettleInput {
  readonly id: TaskId
  readonly owner: string
  readonly settlement: Outcome
  readonly progress: number | undefined
}

const keyOf = (options: ClaimOptions): string =>
  `${options.owner}\u0000${options.leaseMillis}\u0000${options.names.join("\u0000")}`

const failAll = <A, B>(
  requests: ReadonlyArray<Batcher.Request<A, B, StoreUnavailable>>,
  error: StoreUnavailable
): void => {
  const exit = Exit.fail(error)
  for (const request of requests) request.complete(exit)
}

const outcomes: { readonly [K in Outcome["_tag"]]: SettleOutcome } = {
  Completed: "completed",
  Failed: "failed",
  Cancelled: "cancelled",
  Retry: "retry",
  Released: "released",
  Returned: "returned"
}

/** The arguments of one `task_settle` for distinct tasks: one element of each array per settlement. */
const settleArgs = (
  inputs: ReadonlyArray<SettleInput>
): Omit<Args["task_settle"], "p_now" | "p_aging_ms" | "p_synchronous"> => {
  const n = inputs.length
  const owners = new Array<string>(n)
  const ids = new Array<string>(n)
  const kinds = new Array<SettleOutcome>(n)
  const values = new Array<unknown>(n)
  const runAts = new Array<number | null>(n)
  const progress = new Array<number | null>(n)
  for (let i = 0; i < n; i++) {
    const input = inputs[i]!
    const settlement = input.settlement
    owners[i] = input.owner
    ids[i] = input.id
    kinds[i] = outcomes[settlement._tag]
    values[i] = settlement._tag === "Completed"
      ? settlement.result
      : settlement._tag === "Failed" || settlement._tag === "Retry"
      ? settlement.error
      : null
    runAts[i] = settlement._tag === "Retry" ? settlement.runAt.getTime() : null
    progress[i] = input.progress ?? null
  }
  return { p_owners: owners, p_ids: ids, p_outcomes: kinds, p_values: values, p_run_ats: runAts, p_progress: progress }
}

/**
 * The record of a settled task, from its claim row, the settlement and what `task_settle` answered
 * for it (its status, progress and run_at; `at` is the settlement's time).
 */
const settledRecord = (claimed: ClaimedRow, settlement: Outcome, row: SettledRow, at: number): TaskRecord => {
  const final = row.status === "completed" || row.status === "failed" || row.status === "cancelled"
  return {
    id: claimed.id as TaskId,
    name: claimed.name,
    payload: claimed.payload,
    status: row.status as TaskStatus,
    attempt: settlement._tag === "Returned" ? Math.max(claimed.attempt - 1, 0) : claimed.attempt,
    progress: row.progress,
    result: settlement._tag === "Completed" ? (settlement.result ?? null) : null,
    error: settlement._tag === "Completed"
      ? null
      : settlement._tag === "Failed" || settlement._tag === "Retry"
      ? settlement.error
      : claimed.error as TaskErrorInfo | null,
    priority: claimed.priority,
    runAt: toDate(row.run_at)!,
    createdAt: toDate(claimed.created_at)!,
    startedAt: toDate(claimed.at),
    finishedAt: final ? new Date(at) : null,
    updatedAt: new Date(at),
    lockedBy: null,
    lockedUntil: null,
    idempotencyKey: claimed.idempotency_key
  }
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
    const progressMillis = Duration.toMillis(Duration.decode(options.progressInterval ?? "500 millis"))
    const synchronous = options.synchronousSettle ?? true
    const maxBatch = options.maxBatch ?? 500
    const maxInFlight = options.maxInFlight ?? 2
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const now: () => Date | null = options.time === "clock"
      ? () => new Date(clock.unsafeCurrentTimeMillis())
      : () => null
    const feed = yield* ChangeFeed.make
    // the last claim key made, per store (a module-level one was shared by every store of the
    // process): an engine's workers claim with the same owner, lease and names array
    let lastKey: { names: ReadonlyArray<string>; owner: string; leaseMillis: number; key: string } | undefined
    /** The buffer key of a claim: who claims, for how long, which names. */
    const claimKey = (options: ClaimOptions): string => {
      const last = lastKey
      if (
        last !== undefined && last.names === options.names && last.owner === options.owner &&
        last.leaseMillis === options.leaseMillis
      ) return last.key
      const key = keyOf(options)
      lastKey = { names: options.names, owner: options.owner, leaseMillis: options.leaseMillis, key }
      return key
    }

    // the last version published of each task, oldest first (a Map keeps insertion order)
    const versions = new Map<string, Version>()
    /** Whether a version is older than, or the same as, the last one published. */
    const known = (id: string, updatedAt: number, record?: TaskRecord): boolean => {
      const last = versions.get(id)
      if (last === undefined || updatedAt > last.updatedAt) return false
      if (updatedAt < last.updatedAt || record === undefined) return true
      return record.status === last.status && record.progress === last.progress && record.attempt === last.attempt
    }
    const publish = (records: ReadonlyArray<TaskRecord>): void => {
      if (!feed.active()) return
      for (const record of records) {
        const updatedAt = record.updatedAt.getTime()
        // own writes and what is heard of them from the database: published once
        if (known(record.id, updatedAt, record)) continue
        versions.delete(record.id)
        versions.set(record.id, { updatedAt, status: record.status, progress: record.progress, attempt: record.attempt })
        if (versions.size > maxVersions) versions.delete(versions.keys().next().value!)
        feed.publish(record)
      }
    }
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

    // -- settle (coalesced) ----------------------------------------------------------------------
    type SettleRequest = Batcher.Request<SettleInput, Option.Option<TaskRecord>, StoreUnavailable>
    /**
     * The tasks this store claimed and has not settled, by owner and id: their claim rows, from
     * which a settlement's record is made (`task_settle` answers only what the settlement
     * changed). An entry goes when its task is settled, given back or reported lost by a heartbeat.
     */
    const held = new Map<string, Map<string, ClaimedRow>>()
    const holdingsOf = (owner: string): Map<string, ClaimedRow> => {
      let holdings = held.get(owner)
      if (holdings === undefined) {
        holdings = new Map()
        held.set(owner, holdings)
      }
      return holdings
    }
    /** Forgets a held task, unless it was claimed again since (another row). */
    const unhold = (owner: string, id: string, row: ClaimedRow | undefined): void => {
      const holdings = held.get(owner)
      if (holdings !== undefined && (row === undefined || holdings.get(id) === row)) holdings.delete(id)
    }
    /**
     * One `task_settle` statement for distinct tasks: the settled records by id, published. A
     * settled task this store did not claim (never from an engine) is read back.
     */
    const writeSettlements = (
      inputs: ReadonlyArray<SettleInput>
    ): Effect.Effect<Map<string, TaskRecord>, StoreUnavailable> =>
      Effect.suspend(() => {
        const claimed = inputs.map((input) => held.get(input.owner)?.get(input.id))
        return Effect.flatMap(
          caller.call("task_settle", {
            ...settleArgs(inputs),
            p_now: now(),
            p_aging_ms: agingMillis,
            p_synchronous: synchronous
          }),
          (rows) => {
            // settled or not, the owner no longer holds these tasks
            for (let i = 0; i < inputs.length; i++) {
              if (claimed[i] !== undefined) unhold(inputs[i]!.owner, inputs[i]!.id, claimed[i])
            }
            // rows come in the settlements' order (but for those not settled): matched by
            // position, and by id only after the first that is not where expected
            let byRow: Map<string, SettledRow> | undefined
            let next = 0
            const rowOf = (id: string): SettledRow | undefined => {
              if (byRow === undefined) {
                const row = rows[next]
                if (row !== undefined && row.id === id) {
                  next++
                  return row
                }
                byRow = new Map()
                for (let k = next; k < rows.length; k++) byRow.set(rows[k]!.id, rows[k]!)
              }
              return byRow.get(id)
            }
            const byId = new Map<string, TaskRecord>()
            const unknown: Array<TaskId> = []
            const at = rows.length === 0 ? 0 : toDate(rows[0]!.at)!.getTime()
            for (let i = 0; i < inputs.length; i++) {
              const input = inputs[i]!
              const row = rowOf(input.id)
              if (row === undefined) continue
              const record = claimed[i]
              if (record === undefined) unknown.push(input.id)
              else byId.set(input.id, settledRecord(record, input.settlement, row, at))
            }
            const done = () => {
              publish(Array.from(byId.values()))
              return byId
            }
            if (unknown.length === 0) return Effect.succeed(done())
            return Effect.map(
              Effect.forEach(unknown, (id) =>
                Effect.map(get(id), (record) => {
                  if (Option.isSome(record)) byId.set(id, record.value)
                }), { discard: true }),
              done
            )
          }
        )
      })
    const settleBatch = (batch: ReadonlyArray<SettleRequest>): Effect.Effect<void> => {
      // one settlement per task and statement; a repeated id (never from an engine) goes next
      const seen = new Set<string>()
      const now_: Array<SettleRequest> = []
      const later: Array<SettleRequest> = []
      for (const request of batch) {
        if (seen.has(request.input.id)) later.push(request)
        else {
          seen.add(request.input.id)
          now_.push(request)
        }
      }
      const call = writeSettlements(now_.map((request) => request.input)).pipe(
        Effect.matchEffect({
          onFailure: (error) => Effect.sync(() => failAll(now_, error)),
          onSuccess: (byId) =>
            Effect.sync(() => {
              for (const request of now_) {
                request.complete(Exit.succeed(Option.fromNullable(byId.get(request.input.id))))
              }
            })
        })
      )
      return later.length === 0 ? call : Effect.zipRight(call, settleBatch(later))
    }
    const settler = yield* Batcher.make({ execute: settleBatch, maxInFlight, maxBatch })

    // -- claim (coalesced, and ahead of demand with `prefetch`) -----------------------------------
    type ClaimRequest = Batcher.Request<ClaimOptions, ReadonlyArray<TaskRecord>, StoreUnavailable>
    /** Tasks claimed ahead of demand for one owner, lease and names, waiting for a claim. */
    interface Buffer {
      readonly owner: string
      readonly leaseMillis: number
      /** Their claim rows, in claim order. */
      readonly rows: Array<ClaimedRow>
      /** When each was claimed (local clock): it goes back once half its lease is gone. */
      readonly times: Array<number>
      /** A claim ahead is in flight. */
      refilling: boolean
      /** Done when the claim ahead in flight has landed (its tasks in `rows`). */
      refilled: Deferred.Deferred<void> | undefined
    }
    const prefetch = Math.max(0, Math.floor(options.prefetch ?? 0))
    const buffers = new Map<string, Buffer>()
    const recordsOf = (rows: ReadonlyArray<ClaimedRow>, owner: string): Array<TaskRecord> =>
      rows.map((row) => toClaimedRecord(row, owner))
    /** Undoes the claims of tasks that never started: back to the queue, in their old place. */
    const giveBack = (owner: string, rows: ReadonlyArray<ClaimedRow>): Effect.Effect<void> =>
      Effect.forEach(
        rows,
        (row) =>
          Effect.ignore(
            settler.submit({ id: row.id as TaskId, owner, settlement: { _tag: "Returned" }, progress: undefined })
          ),
        { concurrency: "unbounded", discard: true }
      )
    /** Removes the buffered tasks that have used half their lease, for giving back. */
    const takeStale = (buffer: Buffer, now_: number): Array<ClaimedRow> => {
      // in claim order, so the stale ones are a prefix
      const cutoff = now_ - buffer.leaseMillis / 2
      let n = 0
      while (n < buffer.times.length && buffer.times[n]! <= cutoff) n++
      if (n === 0) return []
      buffer.times.splice(0, n)
      return buffer.rows.splice(0, n)
    }
    const claimGroup = (key: string, group: ReadonlyArray<ClaimRequest>): Effect.Effect<void> => {
      const first = group[0]!.input
      const owner = first.owner
      let wanted = 0
      for (const request of group) wanted += request.input.limit
      const ahead = prefetch === 0 ? 0 : Math.max(0, prefetch - (buffers.get(key)?.rows.length ?? 0))
      return caller.call("task_claim", {
        p_owner: owner,
        p_names: first.names,
        p_limit: wanted + ahead,
        p_lease_ms: Math.ceil(first.leaseMillis),
        p_now: now(),
        p_aging_ms: agingMillis
      }).pipe(
        Effect.matchEffect({
          onFailure: (error) => Effect.sync(() => failAll(group, error)),
          onSuccess: (rows) =>
            Effect.suspend(() => {
              const holdings = holdingsOf(owner)
              for (const row of rows) holdings.set(row.id, row)
              if (feed.active()) publish(recordsOf(rows, owner))
              const spare: Array<ClaimedRow> = []
              let next = 0
              for (const request of group) {
                const share = rows.slice(next, next + request.input.limit)
                next += request.input.limit
                if (request.abandoned) spare.push(...share)
                else request.complete(Exit.succeed(recordsOf(share, owner)))
              }
              for (let k = next; k < rows.length; k++) spare.push(rows[k]!)
              if (spare.length === 0) return Effect.void
              if (prefetch === 0) return giveBack(owner, spare)
              let buffer = buffers.get(key)
              if (buffer === undefined) {
                buffer = {
                  owner,
                  leaseMillis: first.leaseMillis,
                  rows: [],
                  times: [],
                  refilling: false,
                  refilled: undefined
                }
                buffers.set(key, buffer)
              }
              const claimedAt = clock.unsafeCurrentTimeMillis()
              for (const row of spare) {
                buffer.rows.push(row)
                buffer.times.push(claimedAt)
              }
              return Effect.void
            })
        })
      )
    }
    const claimBatch = (batch: ReadonlyArray<ClaimRequest>): Effect.Effect<void> => {
      const groups = new Map<string, Array<ClaimRequest>>()
      for (const request of batch) {
        if (request.abandoned) continue
        const key = claimKey(request.input)
        const group = groups.get(key)
        if (group === undefined) groups.set(key, [request])
        else group.push(request)
      }
      if (groups.size === 1) {
        // the usual case (one engine): no fiber per group
        const [key, group] = groups.entries().next().value!
        return claimGroup(key, group)
      }
      return Effect.forEach(groups, ([key, group]) => claimGroup(key, group), { concurrency: "unbounded", discard: true })
    }
    const claimer = yield* Batcher.make({ execute: claimBatch, maxInFlight, maxBatch })
    /**
     * What a claim leaves to do beside answering from the buffer: giving back its stale tasks,
     * and a claim ahead once a quarter of the buffer is used, so a busy engine never waits (at
     * half, a claim under load came back after ten workers had emptied the buffer, about every
     * 50 ms: 10-20% of a benchmark's time idle).
     */
    const sideWork = (buffer: Buffer, options: ClaimOptions, stale: ReadonlyArray<ClaimedRow>) => {
      const back = stale.length === 0 ? undefined : Effect.forkIn(giveBack(options.owner, stale), scope)
      const more = buffer.refilling || buffer.rows.length * 4 > prefetch * 3 ? undefined : refill(buffer, options)
      return back === undefined ? more : more === undefined ? back : Effect.zipRight(back, more)
    }
    const claim = (options: ClaimOptions): Effect.Effect<ReadonlyArray<TaskRecord>, StoreUnavailable> =>
      Effect.suspend(() => {
        if (options.limit <= 0 || options.names.length === 0) return Effect.succeed([])
        const buffer = prefetch === 0 ? undefined : buffers.get(claimKey(options))
        if (buffer === undefined) return claimer.submit(options)
        if (buffer.rows.length === 0) {
          // a claim ahead already on its way comes back sooner than a claim sent now, and saves it
          const refilled = buffer.refilled
          return refilled === undefined ? claimer.submit(options) : Effect.zipRight(Deferred.await(refilled), claim(options))
        }
        const stale = takeStale(buffer, clock.unsafeCurrentTimeMillis())
        buffer.times.splice(0, options.limit)
        const taken = recordsOf(buffer.rows.splice(0, options.limit), options.owner)
        if (taken.length === 0) {
          const back = stale.length === 0 ? Effect.void : Effect.forkIn(giveBack(options.owner, stale), scope)
          return Effect.zipRight(back, claimer.submit(options))
        }
        const side = sideWork(buffer, options, stale)
        return side === undefined ? Effect.succeed(taken) : Effect.as(side, taken)
      })
    const refill = (buffer: Buffer, options: ClaimOptions): Effect.Effect<void> => {
      buffer.refilling = true
      const refilled = Deferred.unsafeMake<void>(FiberId.none)
      buffer.refilled = refilled
      const ahead = claimer.submit({ ...options, limit: 0 }).pipe(
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => {
          buffer.refilling = false
          buffer.refilled = undefined
          Deferred.unsafeDone(refilled, Exit.void)
        }))
      )
      return Effect.asVoid(Effect.forkIn(ahead, scope))
    }
    const runtime = yield* Effect.runtime<never>()
    const ownClaim = claim
    const ahead: AheadClaims | undefined = prefetch === 0 ? undefined : {
      take: (options) => {
        const buffer = buffers.get(claimKey(options))
        if (buffer === undefined || buffer.rows.length === 0) return undefined
        const stale = takeStale(buffer, clock.unsafeCurrentTimeMillis())
        const row = buffer.rows.shift()
        buffer.times.shift()
        const side = sideWork(buffer, options, stale)
        if (side !== undefined) Runtime.runFork(runtime)(side)
        // a claim row has the id, name, payload and attempt of a `ClaimedTask`
        return row as ClaimedTask | undefined
      },
      serves: (store) => store.claim === ownClaim
    }
    if (prefetch > 0) {
      // tasks claimed ahead and not taken go back before their lease runs out, and when we close
      const sweep = Effect.suspend(() => {
        const now_ = clock.unsafeCurrentTimeMillis()
        return Effect.forEach(buffers.values(), (buffer) => giveBack(buffer.owner, takeStale(buffer, now_)), {
          discard: true
        })
      })
      yield* Effect.forkScoped(Effect.interruptible(Effect.forever(Effect.zipRight(Effect.sleep("1 second"), sweep))))
      yield* Effect.addFinalizer(() =>
        Effect.forEach(buffers.values(), (buffer) => {
          buffer.times.splice(0)
          return giveBack(buffer.owner, buffer.rows.splice(0))
        }, { discard: true })
      )
    }

    // -- progress (throttled) --------------------------------------------------------------------
    // by task and owner: a stale owner's progress must not replace the holder's
    const pendingProgress = new Map<string, ProgressArg>()
    const progressKey = (id: string, owner: string): string => `${id}\u0000${owner}`
    let lastWrite = Number.NEGATIVE_INFINITY
    let writing = false
    let scheduled = false
    const writeProgress = (updates: ReadonlyArray<ProgressArg>): Effect.Effect<void, StoreUnavailable> =>
      Effect.map(
        caller.call("task_set_progress", { p_updates: updates, p_now: now() }),
        (rows) => publish(rows.map(toRecord))
      )
    const takePending = (): ReadonlyArray<ProgressArg> => {
      const updates = Array.from(pendingProgress.values())
      pendingProgress.clear()
      lastWrite = clock.unsafeCurrentTimeMillis()
      return updates
    }
    const trailingFlush: Effect.Effect<void> = Effect.suspend(() => {
      scheduled = false
      if (pendingProgress.size === 0) return Effect.void
      return writeProgress(takePending()).pipe(
        Effect.catchAll((error) => Effect.logDebug(`progress not recorded: ${error.reason}`))
      )
    })
    const setProgress = (id: TaskId, owner: string, progress: number): Effect.Effect<void, StoreUnavailable> =>
      Effect.suspend(() => {
        pendingProgress.set(progressKey(id, owner), { id, owner, progress })
        const elapsed = clock.unsafeCurrentTimeMillis() - lastWrite
        if (elapsed >= progressMillis && !writing) {
          // the leading write goes at once, and its caller sees it land
          writing = true
          return Effect.ensuring(writeProgress(takePending()), Effect.sync(() => {
            writing = false
          }))
        }
        if (scheduled) return Effect.void
        scheduled = true
        const wait = Math.max(0, progressMillis - elapsed)
        const flush = Effect.interruptible(Effect.zipRight(Effect.sleep(Duration.millis(wait)), trailingFlush))
        return Effect.asVoid(Effect.forkIn(flush, scope))
      })

    /** The attempt's last progress not yet written: its settlement carries it. */
    const takeProgress = (id: TaskId, owner: string): number | undefined => {
      if (pendingProgress.size === 0) return undefined
      const key = progressKey(id, owner)
      const progress = pendingProgress.get(key)?.progress
      pendingProgress.delete(key)
      return progress
    }

    const settle = (id: TaskId, owner: string, settlement: Settlement) =>
      Effect.suspend(() => settler.submit({ id, owner, settlement, progress: takeProgress(id, owner) }))

    // one statement for a batch the engine gathered itself (its settlers): no coalescing needed
    const settleMany = (
      owner: string,
      settlements: ReadonlyArray<readonly [TaskId, Settlement]>
    ): Effect.Effect<ReadonlyArray<Option.Option<TaskRecord>>, StoreUnavailable> =>
      Effect.suspend(() => {
        const inputs = settlements.map(([id, settlement]): SettleInput => ({
          id,
          owner,
          settlement,
          progress: takeProgress(id, owner)
        }))
        const answer = (byId: Map<string, TaskRecord>) => settlements.map(([id]) => Option.fromNullable(byId.get(id)))
        if (inputs.length <= maxBatch) return Effect.map(writeSettlements(inputs), answer)
        const chunks: Array<ReadonlyArray<SettleInput>> = []
        for (let i = 0; i < inputs.length; i += maxBatch) chunks.push(inputs.slice(i, i + maxBatch))
        return Effect.map(
          Effect.forEach(chunks, writeSettlements),
          (maps) => answer(new Map(maps.flatMap((byId) => Array.from(byId))))
        )
      })

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

    /** Whether tasks of these names wait in a buffer: for the engine they are due now. */
    const bufferedFor = (names: ReadonlyArray<string>): boolean => {
      for (const buffer of buffers.values()) {
        if (buffer.rows.some((row) => names.includes(row.name))) return true
      }
      return false
    }
    const nextRunAt = (names: ReadonlyArray<string>): Effect.Effect<Option.Option<Date>, StoreUnavailable> =>
      Effect.map(caller.call("task_next_run_at", { p_names: names }), (value) => {
        const next = toDate(value)
        if (prefetch > 0 && bufferedFor(names)) {
          const now_ = clock.unsafeCurrentTimeMillis()
          return Option.some(next === null || next.getTime() > now_ ? new Date(now_) : next)
        }
        return Option.fromNullable(next)
      })

    // -- the change feed across instances (migration 0011) -----------------------------------------
    const changeMillis = Duration.toMillis(Duration.decode(options.changePollInterval ?? "5 seconds"))
    const sinceOf = (cursor: number): Date => new Date(cursor - changeMarginMillis)
    // a statement of the feed is not interrupted in flight (its subscribers gone, the store
    // closing): a connection interrupted mid-statement held up the pool's end
    const feedCall = Effect.uninterruptible
    /** The database's time (or the clock's), and the store kept registered as a subscriber. */
    const register = (id: string): Effect.Effect<number | undefined> =>
      feedCall(caller.call("task_feed_subscribe", { p_id: id, p_ttl_ms: Math.max(3 * changeMillis, 10_000) })).pipe(
        Effect.map((at) => (options.time === "clock" ? clock.unsafeCurrentTimeMillis() : Number(at))),
        Effect.catchAll((error) => Effect.as(Effect.logDebug(`change feed: not registered: ${error.reason}`), undefined))
      )
    const readChanged = (ids: ReadonlyArray<string>): Effect.Effect<void> =>
      Effect.forEach(
        Array.from({ length: Math.ceil(ids.length / maxBatch) }, (_, i) => ids.slice(i * maxBatch, (i + 1) * maxBatch)),
        (chunk) =>
          feedCall(caller.call("task_changed", { p_ids: chunk })).pipe(
            Effect.map((rows) => publish(rows.map(toRecord))),
            Effect.catchAll((error) => Effect.logDebug(`change feed: changes not read: ${error.reason}`))
          ),
        { discard: true }
      )
    const readSince = (cursor: number): Effect.Effect<boolean> =>
      feedCall(caller.call("task_changed_since", { p_since: sinceOf(cursor), p_limit: 1000 })).pipe(
        Effect.map((rows) => {
          publish(rows.map(toRecord))
          return true
        }),
        Effect.catchAll((error) => Effect.as(Effect.logDebug(`change feed: changes not read: ${error.reason}`), false))
      )
    /**
     * While someone subscribes: registered (so that statements announce their changes), the
     * driver's notices heard, and every `changePollInterval` what changed since the last look.
     */
    const remoteFeed: Effect.Effect<never, never, Scope.Scope> = Effect.gen(function*() {
      // a new id per session: a session still closing must not unregister the next one
      const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`
      const notices = yield* Queue.unbounded<ChangeNotice | { readonly _tag: "Poll"; readonly at: number }>()
      yield* Effect.addFinalizer(() =>
        Effect.ignore(feedCall(caller.call("task_feed_unsubscribe", { p_id: id })))
      )
      let cursor = (yield* register(id)) ?? clock.unsafeCurrentTimeMillis()
      if (changeNotices !== undefined) yield* changeNotices((notice) => Queue.unsafeOffer(notices, notice))
      yield* Effect.forkScoped(Effect.forever(Effect.zipRight(
        Effect.sleep(Duration.millis(changeMillis)),
        Effect.flatMap(register(id), (at) => Queue.offer(notices, { _tag: "Poll", at: at ?? Number.NaN }))
      )))
      const handle = Effect.flatMap(Queue.takeBetween(notices, 1, Number.POSITIVE_INFINITY), (batch) => {
        const ids = new Set<string>()
        let look = false
        let at = Number.NaN
        for (const notice of batch) {
          if (notice._tag === "Changed") {
            for (const [task, updatedAt] of notice.tasks) if (!known(task, updatedAt)) ids.add(task)
          } else {
            look = true
            if (notice._tag === "Poll" && !Number.isNaN(notice.at)) at = Math.max(Number.isNaN(at) ? notice.at : at, notice.at)
          }
        }
        const read = ids.size === 0 ? Effect.void : readChanged(Array.from(ids))
        if (!look) return read
        return Effect.zipRight(
          read,
          Effect.map(readSince(cursor), (done) => {
            if (done && !Number.isNaN(at)) cursor = Math.max(cursor, at)
          })
        )
      })
      return yield* Effect.forever(handle)
    })
    let subscribers = 0
    let remote: Fiber.RuntimeFiber<never> | undefined
    const subscribe: TaskStore["subscribe"] = Effect.flatMap(feed.subscribe, (stream) =>
      Effect.as(
        Effect.acquireRelease(
          Effect.suspend(() => {
            if (subscribers++ > 0) return Effect.void
            return Effect.map(
              Effect.forkIn(Effect.interruptible(Effect.scoped(remoteFeed)), scope),
              (fiber) => {
                remote = fiber
              }
            )
          }),
          () =>
            Effect.suspend(() => {
              if (--subscribers > 0 || remote === undefined) return Effect.void
              const fiber = remote
              remote = undefined
              versions.clear()
              // not waited for: its unsubscribe and UNLISTEN may wait on a database that is down
              return Fiber.interruptFork(fiber)
            })
        ),
        stream
      ))

    return TaskStore.of({
      shared: true,
      insert,
      get,
      list,
      claim,
      heartbeat,
      setProgress,
      settle,
      settleMany,
      cancel,
      requeue,
      deleteFinishedBefore,
      nextRunAt,
      pendingCount: caller.call("task_pending_count", {}),
      subscribe,
      ahead,
      wakeups,
      onWakeup
    })
  })
