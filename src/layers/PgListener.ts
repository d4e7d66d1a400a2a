/**
 * The LISTEN listener of a channel, shared by every store of the process on the same `PgClient`
 * (@effect/sql-pg's `listen` UNLISTENs the channel when any one subscriber stops): the stores'
 * wake-ups (`<schema>.task_status`) and their notices of other instances' changes
 * (`<schema>.task_changes`). It goes through these states:
 * - *starting*: LISTEN sent; it NOTIFYs a ping every 100 ms until one comes back, since LISTEN
 *   gives no ready signal; then it emits one wake-up, for work that arrived meanwhile;
 * - *live*: each notification (but pings) is a wake-up; after `listenCheckInterval` of silence
 *   it pings, and a ping that does not come back within 5 s means the connection died unseen;
 * - *restarting*: on any failure it waits a second and starts again. Engines poll meanwhile.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { Scope } from "effect"
import { Cause, Duration, Effect, Fiber, PubSub, Stream } from "effect"
import { globalValue } from "effect/GlobalValue"
import * as PgMigrations from "./PgMigrations.js"
import type { ChangeNotice, ChangeNotices } from "./SqlChangeFeed.js"

interface Listener {
  refs: number
  readonly pubsub: PubSub.PubSub<void>
  /**
   * Called on each wake-up as well (`onWakeup`), before the pubsub hears of it: with the
   * notification's payload, or `undefined` when the session has started (anything may have been
   * missed before).
   */
  readonly callbacks: Set<(payload: string | undefined) => void>
  fiber: Fiber.RuntimeFiber<never> | undefined
}

// Process-wide on purpose: one LISTEN per channel and client, whatever the number of stores.
const listeners = globalValue(Symbol.for("effect-tasks/PgTaskStore/listeners"), () => ({
  byClient: new WeakMap<PgClient.PgClient, Map<string, Listener>>(),
  lock: Effect.unsafeMakeSemaphore(1)
}))

/** One LISTEN session: starting, then live, until it fails. */
const session = (
  sql: PgClient.PgClient,
  channel: string,
  listener: Listener,
  checkMillis: number
): Effect.Effect<never, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const signal = (payload: string | undefined) =>
      Effect.suspend(() => {
        for (const wake of listener.callbacks) wake(payload)
        return PubSub.publish(listener.pubsub, undefined)
      })
    let lastHeard = Number.NEGATIVE_INFINITY
    const ping = sql`SELECT pg_notify(${channel}, 'ping')`
    const stream = yield* Effect.forkScoped(
      Stream.runForEach(sql.listen(channel), (payload) =>
        Effect.suspend(() => {
          lastHeard = clock.unsafeCurrentTimeMillis()
          return payload === "ping" ? Effect.void : signal(payload)
        }))
    )
    const heard = Effect.sync(() => lastHeard > Number.NEGATIVE_INFINITY)
    const started = Effect.repeat(Effect.zipRight(ping, Effect.sleep(Duration.millis(100))), {
      until: () => lastHeard > Number.NEGATIVE_INFINITY
    }).pipe(Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => "LISTEN never answered" }))
    yield* Effect.zipRight(Effect.flatMap(heard, (done) => (done ? Effect.void : started)), signal(undefined))
    const check: Effect.Effect<void, unknown> = Effect.suspend(() => {
      const silent = clock.unsafeCurrentTimeMillis() - lastHeard
      if (silent < checkMillis) return Effect.sleep(Duration.millis(checkMillis - silent))
      const before = lastHeard
      return Effect.zipRight(
        ping,
        Effect.repeat(Effect.sleep(Duration.millis(100)), { until: () => lastHeard !== before }).pipe(
          Effect.timeoutFail({ duration: Duration.seconds(5), onTimeout: () => "LISTEN connection went silent" })
        )
      )
    })
    return yield* Effect.raceFirst(
      Effect.forever(check),
      Effect.flatMap(Fiber.await(stream), () => Effect.fail("LISTEN stream ended"))
    )
  })

const runListener = (
  sql: PgClient.PgClient,
  channel: string,
  listener: Listener,
  checkMillis: number
): Effect.Effect<never> =>
  Effect.forever(
    Effect.scoped(session(sql, channel, listener, checkMillis)).pipe(
      Effect.catchAllCause((cause) =>
        Effect.zipRight(
          Effect.logDebug(`LISTEN ${channel} restarting`, Cause.pretty(cause)),
          Effect.sleep(Duration.seconds(1))
        )
      )
    )
  )

const acquireListener = (
  sql: PgClient.PgClient,
  channel: string,
  checkMillis: number
): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.acquireRelease(
    listeners.lock.withPermits(1)(Effect.gen(function*() {
      let byChannel = listeners.byClient.get(sql)
      if (byChannel === undefined) {
        byChannel = new Map()
        listeners.byClient.set(sql, byChannel)
      }
      let listener = byChannel.get(channel)
      if (listener === undefined) {
        listener = { refs: 0, pubsub: yield* PubSub.sliding<void>(1), callbacks: new Set(), fiber: undefined }
        byChannel.set(channel, listener)
      }
      listener.refs++
      if (listener.fiber === undefined) {
        // forked from an uninterruptible acquire: made interruptible, or it could never be stopped
        listener.fiber = yield* Effect.forkDaemon(
          Effect.interruptible(runListener(sql, channel, listener, checkMillis))
        )
      }
      return listener
    })),
    (listener) =>
      listeners.lock.withPermits(1)(Effect.suspend(() => {
        listener.refs--
        if (listener.refs > 0 || listener.fiber === undefined) return Effect.void
        const fiber = listener.fiber
        listener.fiber = undefined
        listeners.byClient.get(sql)?.delete(channel)
        // UNLISTEN on a dead connection may never answer: do not wait for it long
        return Effect.ignore(Effect.timeout(Effect.interruptible(Fiber.interrupt(fiber)), Duration.seconds(2)))
      }))
  )

/**
 * Wake-ups from LISTEN on a channel, through the process's shared listener of that channel.
 *
 * @since 0.1.0
 * @category constructors
 */
export const wakeups = (
  sql: PgClient.PgClient,
  channel: string,
  checkInterval: Duration.DurationInput = "30 seconds"
): Stream.Stream<void> =>
  Stream.unwrapScoped(
    Effect.map(
      acquireListener(sql, channel, Duration.toMillis(Duration.decode(checkInterval))),
      (listener) => Stream.fromPubSub(listener.pubsub)
    )
  )

/**
 * The wake-ups of `wakeups` as calls of `wake`, while the scope lives (the store's `onWakeup`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const onWakeup = (
  sql: PgClient.PgClient,
  channel: string,
  checkInterval: Duration.DurationInput = "30 seconds"
) =>
(wake: () => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(
    acquireListener(sql, channel, Duration.toMillis(Duration.decode(checkInterval))),
    (listener) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          listener.callbacks.add(wake)
        }),
        () =>
          Effect.sync(() => {
            listener.callbacks.delete(wake)
          })
      )
  )

/**
 * What the changes channel (`<schema>.task_changes`, migration 0011) says, as the SQL store's
 * notices: the tasks of a notification, or a resync when the listener (re)started or a
 * notification names no tasks.
 */
const noticeOf = (payload: string | undefined): ChangeNotice => {
  if (payload === undefined || payload === "*") return { _tag: "Resync" }
  try {
    const tasks: unknown = JSON.parse(payload)
    if (Array.isArray(tasks)) return { _tag: "Changed", tasks: tasks as Array<readonly [string, number]> }
  } catch {
    // not ours: look at what changed
  }
  return { _tag: "Resync" }
}

/**
 * The other instances' changes, heard by LISTEN on the schema's changes channel through the
 * process's shared listener of it (the SQL store's `ChangeNotices`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const changeNotices = (
  sql: PgClient.PgClient,
  schema: string,
  checkInterval: Duration.DurationInput = "30 seconds"
): ChangeNotices =>
(notice) =>
  Effect.flatMap(
    acquireListener(sql, PgMigrations.changesChannelOf(schema), Duration.toMillis(Duration.decode(checkInterval))),
    (listener) => {
      const callback = (payload: string | undefined) => notice(noticeOf(payload))
      return Effect.acquireRelease(
        Effect.sync(() => {
          listener.callbacks.add(callback)
          // a listener already live started before this callback: what came meanwhile is read
          if (listener.refs > 1) notice({ _tag: "Resync" })
        }),
        () =>
          Effect.sync(() => {
            listener.callbacks.delete(callback)
          })
      )
    }
  )

