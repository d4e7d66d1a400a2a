/**
 * The Supabase store (`TaskStore.layerSupabase`), through a real supabase-js client.
 *
 * NOTE: PostgREST cannot run on these machines, so no Supabase API server is involved here. The
 * supabase-js client gets a `fetch` (`test/support/supabaseFetch.ts`) that answers each
 * `POST /rest/v1/rpc/<function>` by calling the same SQL function, with the same named arguments,
 * on the real database, and answers as PostgREST would (a JSON array for a set-returning
 * function, the value for a scalar one, a PostgREST-shaped error otherwise). What is tested is
 * thus the store and supabase-js over real SQL functions, not PostgREST itself.
 *
 * The migrations are applied to a fresh schema first (Supabase applies them in production); then
 * the TaskStore contract runs against the layer (virtual time: `time: "clock"`), and an engine
 * runs a task end to end over it (real time). Runs against `DATABASE_URL`, or the embedded
 * PostgreSQL of the global setup.
 */
import { assert, layer } from "@effect/vitest"
import { createClient } from "@supabase/supabase-js"
import { Context, Effect, Exit, Layer, Option, Schema } from "effect"
import { Task, TaskEngine } from "../src/index.js"
import * as SupabaseTaskStore from "../src/layers/SupabaseTaskStore.js"
import { layerSupabase } from "../src/layers/TaskStore.js"
import type { TaskId } from "../src/services/TaskRecord.js"
import { TaskStore } from "../src/services/TaskStore.js"
import { freshSchema, PgClientLive } from "./support/Database.js"
import { clientOn, migratedSchema } from "./support/supabase.js"
import type { RpcLog } from "./support/supabaseFetch.js"
import { taskStoreContract } from "./TaskStoreContract.js"

layer(PgClientLive)("SupabaseTaskStore", (it) => {
  taskStoreContract(
    it,
    Layer.unwrapScoped(
      Effect.gen(function*() {
        const schema = yield* migratedSchema("supa")
        return layerSupabase(yield* clientOn(schema), { time: "clock" })
      })
    ),
    { settleMany: true }
  )
})

const Double = Task.make("double", {
  payload: Schema.Struct({ n: Schema.Int }),
  success: Schema.Struct({ doubled: Schema.Int })
})

layer(PgClientLive, { excludeTestServices: true })("SupabaseTaskStore on a real database", (it) => {
  it.scoped("an engine over layerSupabase runs a submitted task to its result, by rpc only", () =>
    Effect.gen(function*() {
      const schema = yield* migratedSchema("supa_engine")
      const log: RpcLog = { calls: [] }
      const store = layerSupabase(yield* clientOn(schema, log))
      const context = yield* Layer.build(
        Double.toLayer(({ n }) => Effect.succeed({ doubled: n * 2 })).pipe(
          Layer.provideMerge(TaskEngine.layer({
            maxConcurrent: 2,
            pollInterval: "100 millis",
            heartbeatInterval: "100 millis",
            leaseDuration: "1 second",
            shutdownTimeout: "1 second",
            cleanup: false
          })),
          Layer.provideMerge(store)
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Double, { n: 21 })
      assert.deepStrictEqual(yield* engine.await(Double, id), { doubled: 42 })
      const record = Option.getOrThrow(yield* Context.get(context, TaskStore).get(id as unknown as TaskId))
      assert.strictEqual(record.status, "completed")
      assert.deepStrictEqual(record.result, { doubled: 42 })
      assert.strictEqual(record.attempt, 1)
      assert.isTrue(Context.get(context, TaskStore).shared)
      // every call went through supabase-js to this schema
      assert.includeMembers(log.calls, [`${schema}.task_insert`, `${schema}.task_claim`, `${schema}.task_settle`])
      assert.isTrue(log.calls.every((call) => call.startsWith(`${schema}.`)))
    }))

  it.scoped("a refused rpc (no migrations in the schema) fails with StoreUnavailable", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("supa_empty")
      const store = yield* Effect.map(Layer.build(layerSupabase(yield* clientOn(schema))), Context.get(TaskStore))
      const exit = yield* Effect.exit(store.get("missing" as TaskId))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "StoreUnavailable")
        assert.strictEqual(error?.operation, "task_get")
        assert.match(error?.reason ?? "", /PGRST202/)
      }
    }))

  it.effect("a network error fails with StoreUnavailable", () =>
    Effect.gen(function*() {
      const client = createClient("http://supabase.test", "service-role-key", {
        global: { fetch: () => Promise.reject(new TypeError("fetch failed")) },
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false }
      })
      const exit = yield* Effect.exit(SupabaseTaskStore.makeCaller(client).call("task_pending_count", {}))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "StoreUnavailable")
        assert.match(error?.reason ?? "", /fetch failed/)
      }
    }))
})
