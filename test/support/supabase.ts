/**
 * A supabase-js client for tests: its requests are served by the stand-in for PostgREST
 * (`supabaseFetch.ts`) on a schema the migrations were applied to, as `supabase db push` leaves it.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { createClient } from "@supabase/supabase-js"
import type { Scope } from "effect"
import { Effect } from "effect"
import * as PgMigrations from "../../src/layers/PgMigrations.js"
import { freshSchema } from "./Database.js"
import type { RpcLog } from "./supabaseFetch.js"
import { makeFetch } from "./supabaseFetch.js"

/** A supabase-js client on `schema`, its requests served by the stand-in for PostgREST. */
export const clientOn = (schema: string, log?: RpcLog) =>
  Effect.map(makeFetch(log), (fetch) =>
    createClient("http://supabase.test", "service-role-key", {
      db: { schema },
      global: { fetch },
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false }
    }))

/** A fresh schema with the migrations applied, as `supabase db push` would leave it. */
export const migratedSchema = (prefix: string): Effect.Effect<string, unknown, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const schema = yield* freshSchema(prefix)
    yield* Effect.provideService(PgMigrations.run(schema), SqlClient.SqlClient, sql)
    return schema
  })
