/**
 * The PostgreSQL `TaskStore` (@effect/sql-pg): durable tasks that several engine instances share.
 * Building the layer applies the migrations (`PgMigrations`) to its schema; every operation then
 * calls one of the SQL functions they define (`TaskFunctions`, through `PgFunctionCaller`, on the
 * connections of `PgExecute`), coalesced and throttled by `SqlTaskStore`. New work from other
 * instances arrives by LISTEN on `<schema>.task_status`, and their record changes (for
 * `subscribe`, while it has subscribers) on `<schema>.task_changes`, both through the process's
 * shared listener of the channel (`PgListener`).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { ConfigError, Duration, Scope } from "effect"
import { Config, Effect, Layer, Stream } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import { TaskStore } from "../services/TaskStore.js"
import { reservedExecute, reserveLanes } from "./PgExecute.js"
import { makeCaller, unavailable } from "./PgFunctionCaller.js"
import { changeNotices, onWakeup, wakeups } from "./PgListener.js"
import * as PgMigrations from "./PgMigrations.js"
import type { SqlTaskStoreOptions } from "./SqlTaskStore.js"
import * as SqlTaskStore from "./SqlTaskStore.js"

export { type Execute, rawClientOf, reservedExecute } from "./PgExecute.js"
export { makeCaller } from "./PgFunctionCaller.js"
export { changeNotices, onWakeup, wakeups } from "./PgListener.js"

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
