/**
 * The library's PostgreSQL migrations (`migrations/NNNN_*.sql`, embedded in the generated
 * `../generated/PgMigrationsSql.ts`) and how they are applied: into a configurable schema, through
 * @effect/sql's `Migrator`, when a Postgres layer is built. Instances starting together are
 * serialized by an advisory lock, so each migration runs once.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Cause, Effect } from "effect"
import { StoreUnavailable } from "../services/TaskError.js"
import { files } from "../generated/PgMigrationsSql.js"

/**
 * The schema the tables and functions go in when none is given: `public`, which Supabase's
 * PostgREST exposes to `rpc`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSchema = "public"

/**
 * The table recording applied migrations, in the same schema.
 *
 * @since 0.1.0
 * @category constants
 */
export const migrationsTable = "effect_tasks_migrations"

/**
 * The migrations, by name (`0001_task_status`, ...), as SQL text: the content of the `.sql` files.
 *
 * @since 0.1.0
 * @category constants
 */
export const sql: Readonly<Record<string, string>> = files

const schemaPattern = /^[a-z_][a-z0-9_]{0,47}$/

/**
 * Checks a schema name: lower-case letters, digits and `_`, at most 48 characters (it also names
 * the NOTIFY channel `<schema>.task_status`, which must stay under 64 bytes). Throws a
 * `TypeError` otherwise: a bad name is a programming error, caught when the layer is made.
 *
 * @since 0.1.0
 * @category validation
 */
export const validateSchema = (schema: string): string => {
  if (!schemaPattern.test(schema)) {
    throw new TypeError(
      `effect-tasks: schema must match ${schemaPattern} (lower-case letters, digits, _), got ${JSON.stringify(schema)}`
    )
  }
  return schema
}

/**
 * The LISTEN/NOTIFY channel on which the SQL functions announce new runnable work.
 *
 * @since 0.1.0
 * @category constants
 */
export const channelOf = (schema: string): string => `${schema}.task_status`

/**
 * The channel on which the statements of a schema announce the tasks they changed, while some
 * store subscribes (migration 0011).
 *
 * @since 0.1.0
 */
export const changesChannelOf = (schema: string): string => `${schema}.task_changes`

const unavailable = (operation: string) => (cause: Cause.Cause<unknown>) =>
  new StoreUnavailable({ operation, reason: Cause.pretty(cause) })

/**
 * Applies the migrations not yet applied to `schema` (creating it if needed); returns those it
 * applied, as `[id, name]`. Fails with `StoreUnavailable` when the database cannot be reached or
 * a migration fails (the transaction is rolled back: nothing is half-applied).
 *
 * @since 0.1.0
 * @category migrations
 */
export const run = (
  schema: string = defaultSchema
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, StoreUnavailable, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const client = yield* SqlClient.SqlClient
    validateSchema(schema)
    const ident = `"${schema}"`
    const loader = Migrator.fromRecord(
      Object.fromEntries(Object.entries(files).map(([name, text]) => [name, Effect.asVoid(client.unsafe(text))]))
    )
    const migrate = Migrator.make({})
    return yield* client.withTransaction(
      Effect.gen(function*() {
        // one instance at a time: the others wait here, then find nothing left to apply
        yield* client`SELECT pg_advisory_xact_lock(hashtext(${`effect-tasks:${schema}`}))`
        const exists = yield* client`SELECT 1 FROM pg_namespace WHERE nspname = ${schema}`
        // CREATE SCHEMA needs a privilege an existing schema does not: only create a missing one
        if (exists.length === 0) yield* client.unsafe(`CREATE SCHEMA ${ident}`)
        // the SQL names no schema: it lands in this one, and its functions pin it
        yield* client.unsafe(`SET LOCAL search_path TO ${ident}`)
        // created up front, as Migrator would, but without a failing probe inside our transaction
        yield* client.unsafe(
          `CREATE TABLE IF NOT EXISTS ${ident}.${migrationsTable} (` +
            "migration_id integer PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), name text NOT NULL)"
        )
        return yield* migrate({ loader, table: `${schema}.${migrationsTable}` })
      })
    )
  }).pipe(
    Effect.catchAllCause((cause): Effect.Effect<never, StoreUnavailable> =>
      Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.fail(unavailable("migrate")(cause))
    )
  )
