/**
 * The PostgreSQL `TaskStore` (@effect/sql-pg): durable tasks that several engine instances share.
 * Building the layer applies the migrations (`PgMigrations`) to its schema; every operation then
 * calls one of the SQL functions they define (`TaskFunctions`), coalesced and throttled by
 * `SqlTaskStore`. New work from other instances arrives by LISTEN on `<schema>.task_status`, and
 * their record changes (for `subscribe`, while it has subscribers) on `<schema>.task_changes`.
 *
 * The listener of a channel is shared by every store of the process on the same `PgClient`
 * (@effect/sql-pg's `listen` UNLISTENs the channel when any one subscriber stops). It goes through
 * these states:
 * - *starting*: LISTEN sent; it NOTIFYs a ping every 100 ms until one comes back, since LISTEN
 *   gives no ready signal; then it emits one wake-up, for work that arrived meanwhile;
 * - *live*: each notification (but pings) is a wake-up; after `listenCheckInterval` of silence
 *   it pings, and a ping that does not come back within 5 s means the connection died unseen;
 * - *restarting*: on any failure it waits a second and starts again. Engines poll meanwhile.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as SqlClient from "@effect/sql/SqlClient"
import type { ConfigError } from "effect"
import { Cause, Config, Duration, Effect, ExecutionStrategy, Exit, Fiber, Layer, PubSub, Scope, Stream } from "effect"
import { globalValue } from "effect/GlobalValue"
import { StoreUnavailable } from "../services/TaskError.js"
import { TaskStore } from "../services/TaskStore.js"
import * as PgMigrations from "./PgMigrations.js"
import type { SqlTaskStoreOptions } from "./SqlTaskStore.js"
import * as SqlTaskStore from "./SqlTaskStore.js"
import type { Args, FunctionCaller, Name, ParamType, Results } from "./TaskFunctions.js"
import { signatures } from "./TaskFunctions.js"

/**
 * Options of the Postgres store: those of every SQL store, and where it lives. Every field is
 * optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgTaskStoreOptions extends SqlTaskStoreOptions {
  /** The schema of the tables and functions, created if missing ["public"]. */
  readonly schema?: string | undefined
  /** Apply the migrations when the layer is built [true]. */
  readonly migrate?: boolean | undefined
  /** LISTEN for new work from other instances [true]; without it, engines find it by polling. */
  readonly listen?: boolean | undefined
  /** How long a silent LISTEN connection goes before it is checked with a ping ["30 seconds"]. */
  readonly listenCheckInterval?: Duration.DurationInput | undefined
  /**
   * Connections of the client's pool kept reserved for the store's statements; all the stores of
   * one `PgClient` together keep at most a third of its pool. 0 sends every statement through the
   * pool [3].
   */
  readonly reservedConnections?: number | undefined
}

/** Why a SQL call failed, in words a person can act on. */
/**
 * The store's error for a failed call, in words a person can act on: the database's own message
 * (at most 200 characters: some echo the whole bad value) and its SQLSTATE, never the statement.
 */
const unavailable = (operation: string, error: SqlError): StoreUnavailable => {
  const cause = error.cause
  if (cause instanceof Error) {
    const code = (cause as { readonly code?: unknown }).code
    const message = cause.message.length > 200 ? `${cause.message.slice(0, 200)}…` : cause.message
    return typeof code === "string"
      ? new StoreUnavailable({ operation, reason: `${message} (SQLSTATE ${code})`, code })
      : new StoreUnavailable({ operation, reason: message })
  }
  return new StoreUnavailable({ operation, reason: error.message })
}

/**
 * A PostgreSQL array literal of strings, numbers and nulls, made by `JSON.stringify` (native, one
 * string) where the two syntaxes agree: quoted elements escaping only `"` and `\` the same way,
 * `null` unquoted. `pg`'s own encoder concatenated a string per element (the most allocation of a
 * settlement, 16 MB per 20,000). A JSON escape PostgreSQL reads otherwise (`\n`, `\u0001`) or a
 * value that is neither string, finite number nor null leaves the array to `pg`.
 */
const arrayLiteral = (values: ReadonlyArray<unknown>): unknown => {
  for (const value of values) {
    if (value !== null && typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) {
      return values
    }
  }
  const json = JSON.stringify(values)
  return /\\[^"\\]/.test(json) ? values : `{${json.slice(1, -1)}}`
}

const encodeParam = (type: ParamType, value: unknown): unknown =>
  value === null || value === undefined
    ? null
    : type === "jsonb"
    ? JSON.stringify(value)
    : type === "text[]" || type === "double precision[]"
    ? arrayLiteral(value as ReadonlyArray<unknown>)
    : value

/** Runs one statement with its parameters, answering its rows. @since 0.1.0 @category models */
export type Execute = (
  text: string,
  values: ReadonlyArray<unknown>
) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>

/** Statements through the client's pool, like the application's own queries. */
const pooledExecute = (sql: PgClient.PgClient): Execute => (text, values) =>
  sql.unsafe<Record<string, unknown>>(text, values)

/** The part of a `pg` client that runs a named (prepared) statement. */
interface RawClient {
  readonly end?: (callback: (error?: unknown) => void) => unknown
  readonly query: (
    config: { readonly name: string; readonly text: string; readonly values: ReadonlyArray<unknown> },
    callback: (error: Error | null, result: { readonly rows: ReadonlyArray<Record<string, unknown>> }) => void
  ) => void
}

/**
 * The `pg` client under a reserved @effect/sql-pg connection, where it can be seen: the private
 * field `pg` of its `ConnectionImpl` (@effect/sql-pg 0.53, pinned). The only read of a private
 * field of the driver; `test/PgTaskStore.test.ts` ("the pg client under a reserved connection")
 * fails when the field moves or changes, and without it statements go unprepared through the
 * connection's `execute`.
 *
 * @internal
 */
export const rawClientOf = (connection: Connection): RawClient | undefined => {
  const client: unknown = (connection as { readonly pg?: unknown }).pg
  return typeof client === "object" && client !== null && typeof (client as RawClient).query === "function"
    ? client as RawClient
    : undefined
}

/**
 * Whether a statement failed because PostgreSQL refused it (an error with a SQLSTATE code) on a
 * connection that lives on. Not for classes 08 (connection exception) and 57 (operator
 * intervention): `pg_terminate_backend`, a shutdown or a crash answer 57P01-57P03 and then close
 * the connection (a lane that handed such a connection back to the pool failed the next statement
 * on it with ECONNRESET, once in CI).
 */
const refusedByServer = (exit: Exit.Exit<unknown, SqlError>): boolean => {
  if (Exit.isSuccess(exit)) return false
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") return false
  const code = (failure.value.cause as { readonly code?: unknown } | undefined)?.code
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith("08") && !code.startsWith("57")
}

/**
 * A statement's name: a hash of its text (which names the schema) and of the migrations' count, so
 * that a connection that outlived an upgrade prepares the statement afresh.
 */
const statementName = (text: string): string => {
  const keyed = `${Object.keys(PgMigrations.sql).length}:${text}`
  let h1 = 0x811c9dc5
  let h2 = 0x01000193
  for (let i = 0; i < keyed.length; i++) {
    const c = keyed.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 0x01000193)
    h2 = Math.imul(h2 ^ c, 0x5bd1e995)
  }
  return `effect_tasks_${(h1 >>> 0).toString(36)}${(h2 >>> 0).toString(36)}`
}

/**
 * Runs a statement on a reserved connection as a named one, so that PostgreSQL parses and
 * plans the call once per connection (an empty `task_claim` answered in 0.51-0.62 ms prepared,
 * 0.63-0.76 ms not, beside 0.26-0.34 ms for `SELECT 1`). Through the connection's own `execute`
 * where its `pg` client cannot be seen (another @effect/sql-pg than the one pinned).
 */
const prepared = (
  names: Map<string, string>,
  connection: Connection,
  text: string,
  values: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError> => {
  const client = rawClientOf(connection)
  if (client === undefined) return connection.execute(text, values, undefined)
  let name = names.get(text)
  if (name === undefined) {
    name = statementName(text)
    names.set(text, name)
  }
  const config = { name, text, values }
  return Effect.async((resume) => {
    client.query(config, (error, result) => {
      resume(
        error === null || error === undefined
          ? Effect.succeed(result.rows)
          : Effect.fail(new SqlError({ cause: error, message: "Failed to execute statement" }))
      )
    })
  })
}

interface Lane {
  busy: boolean
  held: { readonly connection: Connection; readonly scope: Scope.CloseableScope } | undefined
}

/**
 * Runs statements on up to `count` connections the store keeps reserved from the client's pool,
 * one statement at a time each, and on the pool like any query when all of them are busy.
 *
 * Why: a statement through @effect/sql's `sql.unsafe` opens a span and a scope and borrows a
 * pooled connection, which cost 0.3 ms of round trip on an idle machine here (1.57 against 1.26 ms
 * for one `task_insert`; 0.2-0.27 ms of it before the statement is sent, against 0.013-0.019 ms
 * for a reserved connection's `execute`, which measured the same as a bare `pg` client; borrowing
 * a connection per statement through `sql.reserve` cost as much as `sql.unsafe`). An idle engine
 * pays it on each submit and again on the claim that follows, so it shows whole in the
 * submit-to-start latency. A lane whose statement fails or is interrupted gives its connection
 * back (ended first unless PostgreSQL itself refused the statement) and reserves another when
 * next used, so a restarted database is reconnected as with the pool.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reservedExecute = (sql: PgClient.PgClient, count: number): Effect.Effect<Execute, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pooled = pooledExecute(sql)
    if (count <= 0) return pooled
    const scope = yield* Effect.scope
    // the statement names of this store's texts (its schema's functions)
    const names = new Map<string, string>()
    const lanes: Array<Lane> = Array.from({ length: count }, () => ({ busy: false, held: undefined }))
    /**
     * Gives a lane's connection back after a failed or interrupted statement. Unless PostgreSQL
     * itself refused the statement (an error with a SQLSTATE), the connection is ended first: the
     * pool would otherwise take back a client whose socket was reset before `pg` noticed, and
     * hand it to the next reservation (seen once in CI after `pg_terminate_backend`).
     */
    const release = (lane: Lane, exit: Exit.Exit<unknown, SqlError>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const held = lane.held
        lane.held = undefined
        if (held === undefined) return Effect.void
        if (!refusedByServer(exit)) rawClientOf(held.connection)?.end?.(() => {})
        return Scope.close(held.scope, Exit.void)
      })
    /** Reserves a connection for a lane that holds none, in a scope of its own. */
    const reserve = (lane: Lane): Effect.Effect<Connection, SqlError> =>
      Effect.flatMap(Scope.fork(scope, ExecutionStrategy.sequential), (own) =>
        Scope.extend(sql.reserve, own).pipe(
          Effect.tap((connection) => Effect.sync(() => (lane.held = { connection, scope: own }))),
          Effect.onError(() => Scope.close(own, Exit.void))
        ))
    return (text, values) =>
      Effect.suspend(() => {
        let lane: Lane | undefined
        for (const candidate of lanes) {
          if (!candidate.busy) {
            lane = candidate
            break
          }
        }
        if (lane === undefined) return pooled(text, values)
        const own = lane
        own.busy = true
        // a held lane runs the statement at once; a new one reserves its connection first
        const run = own.held !== undefined
          ? prepared(names, own.held.connection, text, values)
          : Effect.flatMap(reserve(own), (connection) => prepared(names, connection, text, values))
        return run.pipe(
          Effect.onExit((exit) => {
            own.busy = false
            return Exit.isSuccess(exit) ? Effect.void : release(own, exit)
          })
        )
      })
  })

// Process-wide on purpose: the stores of one `PgClient` share its pool.
const reservations = globalValue(
  Symbol.for("effect-tasks/PgTaskStore/reservations"),
  () => new WeakMap<PgClient.PgClient, { reserved: number }>()
)

/**
 * How many lanes a store of this client may reserve, out of `wanted`: all the stores of one
 * `PgClient` together reserve at most a third of its pool, so that pooled statements (the
 * application's, and a store's when its lanes are busy) always find a connection. Given back
 * when the scope closes.
 */
const reserveLanes = (sql: PgClient.PgClient, wanted: number): Effect.Effect<number, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let account = reservations.get(sql)
      if (account === undefined) {
        account = { reserved: 0 }
        reservations.set(sql, account)
      }
      const budget = Math.floor((sql.config.maxConnections ?? 10) / 3)
      const granted = Math.max(0, Math.min(Math.floor(wanted), budget - account.reserved))
      account.reserved += granted
      return granted
    }),
    (granted) =>
      Effect.sync(() => {
        const account = reservations.get(sql)
        if (account !== undefined) account.reserved -= granted
      })
  )

/**
 * Calls the SQL functions through a `PgClient`, by name with named arguments:
 * `SELECT * FROM "<schema>".task_claim(p_owner => $1::text, ...)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCaller = (
  sql: PgClient.PgClient,
  schema: string,
  execute: Execute = pooledExecute(sql)
): FunctionCaller => {
  PgMigrations.validateSchema(schema)
  const texts = new Map<string, string>()
  for (const name of Object.keys(signatures) as Array<Name>) {
    const signature = signatures[name]
    const args = signature.params.map(([param, type], i) => `${param} => $${i + 1}::${type}`).join(", ")
    const call = `"${schema}".${name}(${args})`
    texts.set(name, signature.returns === "rows" ? `SELECT * FROM ${call}` : `SELECT ${call} AS value`)
  }
  const call = <F extends Name>(name: F, args: Args[F]): Effect.Effect<Results[F], StoreUnavailable> =>
    Effect.suspend(() => {
      const signature = signatures[name]
      let values: Array<unknown>
      try {
        values = signature.params.map(([param, type]) => encodeParam(type, (args as Record<string, unknown>)[param]))
      } catch (error) {
        // JSON.stringify refuses a value (a bigint, a cycle): the store cannot hold it
        return Effect.fail(
          new StoreUnavailable({ operation: name, reason: `argument is not JSON: ${String(error)}`, code: "22000" })
        )
      }
      return Effect.mapBoth(execute(texts.get(name)!, values), {
        onFailure: (error) => unavailable(name, error),
        onSuccess: (rows) => (signature.returns === "rows" ? rows : rows[0]?.value ?? null) as Results[F]
      })
    })
  return { call }
}

// -- the shared listener ---------------------------------------------------------------------

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
const noticeOf = (payload: string | undefined): SqlTaskStore.ChangeNotice => {
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
): SqlTaskStore.ChangeNotices =>
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

// -- the store -------------------------------------------------------------------------------

/**
 * Builds a Postgres store in the current scope: applies the migrations (unless `migrate: false`),
 * then serves the port through the SQL functions.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PgTaskStoreOptions = {}
): Effect.Effect<TaskStore, StoreUnavailable, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = PgMigrations.validateSchema(options.schema ?? PgMigrations.defaultSchema)
    const sql = yield* PgClient.PgClient
    if (options.migrate !== false) {
      yield* Effect.provideService(PgMigrations.run(schema), SqlClient.SqlClient, sql)
    }
    const channel = PgMigrations.channelOf(schema)
    const signals = options.listen === false ? Stream.never : wakeups(sql, channel, options.listenCheckInterval)
    const callbacks = options.listen === false ? undefined : onWakeup(sql, channel, options.listenCheckInterval)
    const execute = yield* reservedExecute(sql, yield* reserveLanes(sql, options.reservedConnections ?? 3))
    const notices = options.listen === false ? undefined : changeNotices(sql, schema, options.listenCheckInterval)
    return yield* SqlTaskStore.make(makeCaller(sql, schema, execute), signals, options, callbacks, notices)
  })

/**
 * The Postgres store on the `PgClient` in context. Several engine instances (processes) on one
 * database and schema share one queue: claims by `FOR UPDATE SKIP LOCKED` under leases that
 * heartbeats extend; a task whose instance died runs again once its lease expires (at-least-once).
 *
 * @example
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { TaskEngine, TaskStore } from "effect-tasks"
 *
 * const Database = PgClient.layer({ url: Redacted.make("postgres://app:secret@127.0.0.1:5432/app") })
 * const Engine = TaskEngine.layer({ maxConcurrent: 10 }).pipe(
 *   Layer.provide(TaskStore.layerPostgres({ schema: "public" })),
 *   Layer.provide(Database)
 * )
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPostgres = (options: PgTaskStoreOptions = {}): Layer.Layer<TaskStore, StoreUnavailable, PgClient.PgClient> => {
  PgMigrations.validateSchema(options.schema ?? PgMigrations.defaultSchema)
  return Layer.scoped(TaskStore, make(options))
}

/**
 * The Postgres store and its `PgClient`, connecting to the URL in the `DATABASE_URL` config
 * (environment variable). The `PgClient` (and `SqlClient`) are provided too, for the SQL error
 * reporter and metrics.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPostgresConfig = (
  options: PgTaskStoreOptions = {}
): Layer.Layer<TaskStore | PgClient.PgClient | SqlClient.SqlClient, StoreUnavailable | ConfigError.ConfigError> =>
  layerPostgres(options).pipe(
    Layer.provideMerge(
      PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") }).pipe(
        Layer.mapError((error): StoreUnavailable | ConfigError.ConfigError =>
          error._tag === "SqlError" ? unavailable("connect", error) : error
        )
      )
    )
  )
