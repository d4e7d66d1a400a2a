/**
 * How the Postgres store runs its statements: through the client's pool, or on connections it
 * keeps reserved from that pool (its *lanes*), as named (prepared) statements on the `pg` client
 * under each, the one place that reads a private field of the driver. Owns the lanes and the
 * process-wide count of connections reserved per `PgClient`.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, ExecutionStrategy, Exit, Scope } from "effect"
import { globalValue } from "effect/GlobalValue"
import * as PgMigrations from "./PgMigrations.js"

/** Runs one statement with its parameters, answering its rows. @since 0.1.0 @category models */
export type Execute = (
  text: string,
  values: ReadonlyArray<unknown>
) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, SqlError>

/** Statements through the client's pool, like the application's own queries. @internal */
export const pooledExecute = (sql: PgClient.PgClient): Execute => (text, values) =>
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
 *
 * @internal
 */
export const reserveLanes = (sql: PgClient.PgClient, wanted: number): Effect.Effect<number, never, Scope.Scope> =>
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
