/**
 * The change feed of a SQL store (`subscribe`): the records the store writes, published as it
 * writes them, and those of other instances (migration 0011). A version of a task (its
 * `updated_at`, status, progress and attempt) is published once, and never after a newer one.
 * The feed's states:
 * - *idle*: no subscriber; nothing is published, remembered or read;
 * - *subscribed*: the first subscriber starts the *remote feed*, which registers the store as a
 *   subscriber in the database (so that statements announce their changes), hears the driver's
 *   notices (`ChangeNotices`) and reads the tasks they name, and every `changePollInterval`
 *   registers again and reads what changed since its last look (over Supabase, the only way);
 * - the last subscriber's leaving stops the remote feed (back to *idle*) and forgets the versions.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Fiber, Queue } from "effect"
import type { Scope } from "effect"
import type { TaskRecord } from "../services/TaskRecord.js"
import type { TaskStore } from "../services/TaskStore.js"
import * as ChangeFeed from "./ChangeFeed.js"
import type { SqlStoreContext } from "./SqlStoreContext.js"
import { toRecord } from "./TaskFunctions.js"

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

/** @internal */
export interface SqlChangeFeed {
  /** Whether anyone subscribes: build records to publish only then. */
  readonly active: () => boolean
  /** Publishes the versions of these records not published yet (nothing when none subscribes). */
  readonly publish: (records: ReadonlyArray<TaskRecord>) => void
  /** The port's `subscribe`. */
  readonly subscribe: TaskStore["subscribe"]
}

/**
 * Builds a store's feed; `changeNotices` (optional) is what the driver hears of other instances'
 * changes, listened to while the feed has subscribers.
 *
 * @internal
 */
export const make = (
  context: SqlStoreContext,
  changePollInterval: Duration.DurationInput | undefined,
  changeNotices: ChangeNotices | undefined
): Effect.Effect<SqlChangeFeed> =>
  Effect.gen(function*() {
    const { caller, clock, maxBatch, scope } = context
    const feed = yield* ChangeFeed.make
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

    const changeMillis = Duration.toMillis(Duration.decode(changePollInterval ?? "5 seconds"))
    const sinceOf = (cursor: number): Date => new Date(cursor - changeMarginMillis)
    // a statement of the feed is not interrupted in flight (its subscribers gone, the store
    // closing): a connection interrupted mid-statement held up the pool's end
    const feedCall = Effect.uninterruptible
    /** The database's time (or the clock's), and the store kept registered as a subscriber. */
    const register = (id: string): Effect.Effect<number | undefined> =>
      feedCall(caller.call("task_feed_subscribe", { p_id: id, p_ttl_ms: Math.max(3 * changeMillis, 10_000) })).pipe(
        Effect.map((at) => (context.clockTime ? clock.unsafeCurrentTimeMillis() : Number(at))),
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

    return { active: feed.active, publish, subscribe }
  })
