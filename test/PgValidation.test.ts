/**
 * Bad input is the caller's error, the same on every store: times that are no dates, priorities
 * outside 32 bits, text PostgreSQL cannot keep (a NUL, a lone surrogate) in payloads, keys, ids,
 * name filters and cursors. The engine refuses each at once with a typed error, before any store
 * sees it (PostgreSQL answered 503 `StoreUnavailable` after 1.5 s of retries; the memory store
 * accepted them, or spun at 100% CPU on an infinite delay). Runs on the memory store, PostgreSQL
 * and Supabase, in real time.
 */
import { assert, layer } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, Option, Schema } from "effect"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Task, TaskEngine, TaskStore, WebHandler } from "../src/index.js"
import * as PgTaskStore from "../src/layers/PgTaskStore.js"
import type { TaskId } from "../src/services/TaskRecord.js"
import type { TaskStore as TaskStoreService } from "../src/services/TaskStore.js"
import { TaskStore as TaskStoreTag } from "../src/services/TaskStore.js"
import { freshSchema, PgClientLive } from "./support/Database.js"
import { call } from "./support/http.js"
import { clientOn, migratedSchema } from "./support/supabase.js"

const Note = Task.make("note", {
  payload: Schema.Struct({
    text: Schema.String,
    tags: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
    data: Schema.optional(Schema.Unknown)
  })
})

const NoteLive = Note.toLayer(() => Effect.void)

const stores: ReadonlyArray<readonly [string, Layer.Layer<TaskStoreService, unknown, import("@effect/sql-pg/PgClient").PgClient>]> = [
  ["memory", TaskStore.layerMemory],
  ["postgres", Layer.unwrapScoped(Effect.map(freshSchema("valid"), (schema) => PgTaskStore.layerPostgres({ schema })))],
  [
    "supabase",
    Layer.unwrapScoped(
      Effect.gen(function*() {
        const schema = yield* migratedSchema("valid_supa")
        return TaskStore.layerSupabase(yield* clientOn(schema))
      })
    )
  ]
]

const nul = "a\u0000b"
const lone = "a\ud800b"

for (const [storeName, store] of stores) {
  layer(PgClientLive, { excludeTestServices: true })(`bad input on the ${storeName} store`, (it) => {
    const engineOn = Layer.build(
      NoteLive.pipe(Layer.provideMerge(TaskEngine.layer({ cleanup: false })), Layer.provide(store))
    )

    it.scoped("times that are no dates fail at once with OptionInvalid naming the option", () =>
      Effect.gen(function*() {
        const context = yield* engineOn
        const engine = context.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine
        const cases: ReadonlyArray<readonly [TaskEngine.SubmitOptions, string]> = [
          [{ delay: Duration.infinity }, "delay"],
          [{ delay: Duration.millis(9e15) }, "delay"],
          [{ runAt: new Date(Number.NaN) }, "runAt"],
          [{ runAt: new Date(8.64e15) }, "runAt"],
          [{ priority: 2 ** 31 }, "priority"],
          [{ priority: -(2 ** 31) - 1 }, "priority"],
          [{ priority: 1.5 }, "priority"],
          [{ idempotencyKey: nul }, "idempotencyKey"],
          [{ idempotencyKey: lone }, "idempotencyKey"]
        ]
        for (const [options, option] of cases) {
          const error = yield* Effect.flip(engine.submit(Note, { text: "x" }, options))
          assert.strictEqual(error._tag, "OptionInvalid", `${option}: ${error.message}`)
          if (error._tag === "OptionInvalid") assert.strictEqual(error.option, option)
        }
        // the extremes that are dates are taken
        yield* engine.submit(Note, { text: "late" }, { runAt: new Date(Date.UTC(9999, 11, 31)) })
        yield* engine.submit(Note, { text: "high" }, { priority: 2 ** 31 - 1, delay: "1 hour" })
        const stored = yield* engine.list({ status: "pending" })
        assert.deepStrictEqual(stored.map((r) => r.payload).sort(), [{ text: "high" }, { text: "late" }].sort())
      }))

    it.scoped("text no store can keep is PayloadInvalid with its path, or not found, or OptionInvalid", () =>
      Effect.gen(function*() {
        const context = yield* engineOn
        const engine = context.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine
        const payloads: ReadonlyArray<readonly [unknown, string]> = [
          [{ text: nul }, "text"],
          [{ text: lone }, "text"],
          [{ text: "\udc00" }, "text"],
          [{ text: "ok", tags: { [nul]: 1 } }, `tags.${nul}`]
        ]
        for (const [payload, path] of payloads) {
          const typed = yield* Effect.flip(engine.submit(Note, payload as never))
          assert.strictEqual(typed._tag, "PayloadInvalid", typed.message)
          if (typed._tag === "PayloadInvalid") assert.strictEqual(typed.path, path)
          const byName = yield* Effect.flip(engine.submitUnknown("note", payload))
          assert.strictEqual(byName._tag, "PayloadInvalid", byName.message)
        }
        // nested past what a store's parser takes (PostgreSQL's jsonb gives up past some thousands)
        let deep: unknown = 1
        for (let i = 0; i < 5000; i++) deep = [deep]
        for (const submitted of [engine.submit(Note, { text: "deep", data: deep }), engine.submitUnknown("note", { text: "deep", data: deep })]) {
          const error = yield* Effect.flip(submitted)
          assert.strictEqual(error._tag, "PayloadInvalid")
          if (error._tag === "PayloadInvalid") assert.include(error.issue, "nested deeper than 1000 levels")
        }
        // a well-formed pair is fine
        const emoji = yield* engine.submit(Note, { text: "\ud83d\ude00" })
        for (const id of [nul, lone]) {
          assert.isTrue(Option.isNone(yield* engine.get(id)))
          assert.strictEqual((yield* Effect.flip(engine.cancel(id)))._tag, "TaskNotFound")
          assert.strictEqual((yield* Effect.flip(engine.retry(id)))._tag, "TaskNotFound")
          assert.strictEqual((yield* Effect.flip(engine.await(Note, id)))._tag, "TaskNotFound")
        }
        for (const filter of [{ name: nul }, { name: lone }, { cursor: nul }, { cursor: lone }, { limit: -1 }, { limit: 2 ** 31 }]) {
          const error = yield* Effect.flip(engine.list(filter))
          assert.strictEqual(error._tag, "OptionInvalid", JSON.stringify(filter))
        }
        const all = yield* engine.list()
        assert.deepStrictEqual(all.map((r) => r.id), [emoji])
      }))

    it.scoped("submitMany with one idempotency key for many tasks is OptionInvalid, not a defect", () =>
      Effect.gen(function*() {
        const context = yield* engineOn
        const engine = context.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine
        const exit = yield* Effect.either(engine.submitMany(Note, [{ text: "a" }, { text: "b" }], { idempotencyKey: "k" }))
        assert.isTrue(Either.isLeft(exit))
        if (Either.isLeft(exit)) assert.strictEqual(exit.left._tag, "OptionInvalid")
      }))
  })
}

layer(PgClientLive, { excludeTestServices: true })("task names", (it) => {
  it("a task name no store can keep is refused when the task is made", () => {
    assert.throws(() => Task.make(nul), /NUL/)
    assert.throws(() => Task.make(lone), /surrogate/)
  })
})

layer(PgClientLive, { excludeTestServices: true })("the PostgreSQL store's refusals", (it) => {
  it.scoped("carry the SQLSTATE, are permanent, and hold no SQL text", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("refusal")
      const store = Context.get(yield* Layer.build(PgTaskStore.layerPostgres({ schema })), TaskStoreTag)
      // around the engine, which would refuse it first
      const error = yield* Effect.flip(store.get(`x${nul}`.repeat(1000) as TaskId))
      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.isTrue(error.permanent, error.reason)
      assert.match(error.code ?? "", /^22/)
      assert.notMatch(error.reason, /SELECT|task_get\(/)
      assert.isAtMost(error.reason.length, 240)
    }))
})

layer(PgClientLive, { excludeTestServices: true })("a bad stored row", (it) => {
  it.scoped("a row whose times are PostgreSQL's infinity does not break GET /tasks or GET /tasks/{id}", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("badrow")
      const context = yield* Layer.build(
        NoteLive.pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false })),
          Layer.provide(PgTaskStore.layerPostgres({ schema }))
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const good = yield* engine.submit(Note, { text: "good" }, { delay: "1 hour" })
      const bad = yield* engine.submit(Note, { text: "bad" }, { delay: "1 hour" })
      // written by hand, around the engine
      yield* sql.unsafe(`UPDATE "${schema}".task_status SET run_at = 'infinity', created_at = '-infinity' WHERE id = $1`, [bad])
      const web = yield* Effect.acquireRelease(
        Effect.sync(() => WebHandler.make(Layer.succeed(TaskEngine.TaskEngine, engine), { disposeOnUnload: false })),
        (web) => Effect.promise(() => web.dispose())
      )
      const page = yield* call(web.handler, "GET", "/tasks")
      assert.strictEqual(page.status, 200, page.text)
      const ids = page.as(Schema.Struct({ tasks: Schema.Array(Schema.Struct({ id: Schema.String, runAt: Schema.String })) })).tasks
      assert.deepStrictEqual(ids.map((t) => t.id).sort(), [bad, good].sort())
      assert.strictEqual(ids.find((t) => t.id === bad)?.runAt, "9999-12-31T23:59:59.999Z")
      const one = yield* call(web.handler, "GET", `/tasks/${bad}`)
      assert.strictEqual(one.status, 200, one.text)
    }))
})
