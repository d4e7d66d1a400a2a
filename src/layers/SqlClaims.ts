/**
 * The claims of a SQL store, coalesced: concurrent `claim` calls of one owner (an engine's
 * workers each ask for one task) become one `task_claim` of their summed limits, whose rows are
 * shared out in order. With `prefetch`, a claim also takes that many tasks more, kept in a
 * buffer per owner, lease and names, from which the next claims are answered at once (an engine
 * takes them without an Effect: `ahead`). A buffered task is in one of these states:
 * - *waiting*: claimed ahead, in its buffer, in claim order, until a claim takes it;
 * - *stale*: it has waited half its lease: the next claim or the sweep (every second) gives it
 *   back (its claim undone, `Returned`), as does the store's closing;
 * and a buffer is *refilling* while a claim ahead for it is in flight: one starts once a quarter
 * of the buffer is used, so a busy engine does not stop at an empty buffer.
 *
 * @since 0.1.0
 * @internal
 */
import type { Scope } from "effect"
import { Deferred, Effect, Exit, FiberId, Runtime } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { TaskId, TaskRecord } from "../services/TaskRecord.js"
import type { AheadClaims, ClaimedTask, ClaimOptions } from "../services/TaskStore.js"
import * as Batcher from "./Batcher.js"
import type { SqlChangeFeed } from "./SqlChangeFeed.js"
import type { SqlSettlements } from "./SqlSettlements.js"
import type { SqlStoreContext } from "./SqlStoreContext.js"
import type { ClaimedRow } from "./TaskFunctions.js"
import { toClaimedRecord } from "./TaskFunctions.js"

const keyOf = (options: ClaimOptions): string =>
  `${options.owner}\u0000${options.leaseMillis}\u0000${options.names.join("\u0000")}`

/** @internal */
export interface SqlClaims {
  /** The port's `claim`. */
  readonly claim: (options: ClaimOptions) => Effect.Effect<ReadonlyArray<TaskRecord>, StoreUnavailable>
  /** The port's `ahead`: `undefined` without `prefetch`. */
  readonly ahead: AheadClaims | undefined
  /** How many tasks a claim takes ahead of demand (0: none). */
  readonly prefetch: number
  /** Whether tasks of these names wait in a buffer: for the engine they are due now. */
  readonly bufferedFor: (names: ReadonlyArray<string>) => boolean
}

/**
 * The claimer of a store, whose dispatcher and sweep live as long as the scope; its buffered
 * tasks go back through `settlements` when the scope closes.
 *
 * @internal
 */
export const make = (
  context: SqlStoreContext,
  feed: Pick<SqlChangeFeed, "active" | "publish">,
  settlements: Pick<SqlSettlements, "hold" | "submit">,
  prefetchOption: number | undefined
): Effect.Effect<SqlClaims, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { agingMillis, caller, clock, maxBatch, maxInFlight, now, scope } = context
    const { hold, submit } = settlements
    const { publish } = feed
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
    const prefetch = Math.max(0, Math.floor(prefetchOption ?? 0))
    const buffers = new Map<string, Buffer>()
    const recordsOf = (rows: ReadonlyArray<ClaimedRow>, owner: string): Array<TaskRecord> =>
      rows.map((row) => toClaimedRecord(row, owner))
    /** Undoes the claims of tasks that never started: back to the queue, in their old place. */
    const giveBack = (owner: string, rows: ReadonlyArray<ClaimedRow>): Effect.Effect<void> =>
      Effect.forEach(
        rows,
        (row) =>
          Effect.ignore(
            submit({ id: row.id as TaskId, owner, settlement: { _tag: "Returned" }, progress: undefined })
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
          onFailure: (error) => Effect.sync(() => Batcher.failAll(group, error)),
          onSuccess: (rows) =>
            Effect.suspend(() => {
              hold(owner, rows)
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


    const bufferedFor = (names: ReadonlyArray<string>): boolean => {
      for (const buffer of buffers.values()) {
        if (buffer.rows.some((row) => names.includes(row.name))) return true
      }
      return false
    }

    return { claim, ahead, prefetch, bufferedFor }
  })
