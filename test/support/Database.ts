/**
 * Database helpers for tests: a `PgClient` on the run's PostgreSQL (see `globalSetup.ts`) and
 * schemas of their own, so that test files (and tests) never see each other's rows.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Scope } from "effect"
import { Effect, Layer, Redacted } from "effect"
import { inject } from "vitest"

/** The URL of the run's PostgreSQL. */
export const databaseUrl = (): string => {
  const url = inject("databaseUrl")
  if (url === undefined || url === "") {
    throw new Error("no database for this run: set DATABASE_URL, or name this file like the others that need one (see test/support/globalSetup.ts)")
  }
  return url
}

/** A client of the run's PostgreSQL. */
export const PgClientLive: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient> = Layer.orDie(
  Layer.suspend(() => PgClient.layer({ url: Redacted.make(databaseUrl()), maxConnections: 8 }))
)

let counter = 0

/** A schema name no other test uses: `<prefix>_<process>_<n>`. */
export const uniqueSchema = (prefix: string): string => `${prefix}_${process.pid}_${counter++}`

/** A fresh schema name, dropped (with everything in it) when the scope closes. */
export const freshSchema = (prefix: string): Effect.Effect<string, never, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const schema = uniqueSchema(prefix)
    yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
    return schema
  })
