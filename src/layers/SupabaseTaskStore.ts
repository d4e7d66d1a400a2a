/**
 * The Supabase `TaskStore`: for Edge Functions that reach the database only through supabase-js.
 * Every operation calls one of the SQL functions of the migrations (`TaskFunctions`) over
 * PostgREST, as `client.rpc(name, { p_...: ... })`, coalesced and throttled by `SqlTaskStore`,
 * exactly as `layerPostgres` calls them over a connection; the queue is the same one, so Edge
 * Functions and Node processes on `layerPostgres` may share it.
 *
 * What it does not do:
 * - wake-ups: supabase-js cannot LISTEN, so new work from other instances is found by the
 *   engine's polling backstop (every `pollInterval`: the store is `shared`);
 * - migrations: Supabase applies them. Copy `migrations/[0-9]*.sql` (not `current-schema.sql`) to
 *   `supabase/migrations` (with a timestamp prefix, in order) and run `supabase db push`;
 *   `0007_privileges.sql` grants the functions to `service_role` only, so the client must use the
 *   service-role key. The schema is the client's (`createClient(url, key, { db: { schema } })`,
 *   "public" by default), and must be one PostgREST exposes.
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Effect, Layer, Stream } from "effect"
import { StoreUnavailable } from "../services/TaskError.js"
import { TaskStore } from "../services/TaskStore.js"
import type { SqlTaskStoreOptions } from "./SqlTaskStore.js"
import * as SqlTaskStore from "./SqlTaskStore.js"
import type { Args, FunctionCaller, Name, Results } from "./TaskFunctions.js"

/**
 * What the store needs of a supabase-js client: `rpc`. A `SupabaseClient` (from `createClient`)
 * is one; so is `client.schema("name")`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SupabaseRpcClient {
  readonly rpc: (
    fn: string,
    args?: Record<string, unknown>
  ) => PromiseLike<{
    readonly data: unknown
    readonly error: { readonly message: string; readonly code?: string | undefined } | null
  }>
}

/**
 * Options of the Supabase store: those of every SQL store (`SqlTaskStoreOptions`). Every field is
 * optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface SupabaseTaskStoreOptions extends SqlTaskStoreOptions {}

/**
 * A PostgREST error in words a person can act on: its message (at most 200 characters) and code
 * (the SQLSTATE when the database refused the call), never the statement.
 */
const unavailable = (
  operation: string,
  error: { readonly message: string; readonly code?: string | undefined }
): StoreUnavailable => {
  const message = error.message.length > 200 ? `${error.message.slice(0, 200)}…` : error.message
  return typeof error.code === "string" && error.code !== ""
    ? new StoreUnavailable({ operation, reason: `${message} (${error.code})`, code: error.code })
    : new StoreUnavailable({ operation, reason: message })
}

/**
 * Calls the SQL functions through `client.rpc(name, args)`: PostgREST passes the named arguments
 * as JSON (dates as ISO 8601 strings) and answers rows as a JSON array, a scalar as its value.
 * A PostgREST error (a refused call) or a network error fails with `StoreUnavailable`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCaller = (client: SupabaseRpcClient): FunctionCaller => {
  const call = <F extends Name>(name: F, args: Args[F]): Effect.Effect<Results[F], StoreUnavailable> =>
    Effect.flatMap(
      Effect.tryPromise({
        try: () => client.rpc(name, args as unknown as Record<string, unknown>),
        catch: (error) => new StoreUnavailable({ operation: name, reason: `rpc failed: ${String(error)}` })
      }),
      ({ data, error }) =>
        error === null
          ? Effect.succeed((data ?? null) as Results[F])
          : Effect.fail(unavailable(name, error))
    )
  return { call }
}

/**
 * Builds a Supabase store in the current scope over this client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  client: SupabaseRpcClient,
  options: SupabaseTaskStoreOptions = {}
): Effect.Effect<TaskStore, never, Scope.Scope> =>
  // no LISTEN over PostgREST: engines find other instances' work by polling (`shared: true`)
  SqlTaskStore.make(makeCaller(client), Stream.never, options)

/**
 * The Supabase store over a supabase-js client (service-role key), for Edge Functions. The
 * migrations must have been applied by Supabase (see the module doc); engines poll for new work.
 *
 * @example
 * import { createClient } from "@supabase/supabase-js"
 * import { Layer } from "effect"
 * import { TaskEngine, TaskStore } from "effect-tasks"
 *
 * const client = createClient("https://project.supabase.co", "service-role-key")
 * const Engine = TaskEngine.layer({ pollInterval: "1 second" }).pipe(
 *   Layer.provide(TaskStore.layerSupabase(client))
 * )
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSupabase = (
  client: SupabaseRpcClient,
  options: SupabaseTaskStoreOptions = {}
): Layer.Layer<TaskStore> => Layer.scoped(TaskStore, make(client, options))
