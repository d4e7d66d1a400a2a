import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Option, Ref, Schedule, Schema, TestClock } from "effect"
import { Progress, Task, TaskApi, TaskEngine, TaskStore, WaitUntil } from "../src/index.js"
import { DuplicateTask, PayloadInvalid } from "../src/services/TaskError.js"
import { TaskRecord } from "../src/services/TaskRecord.js"
import { call, events, open, serve, Tagged } from "./support/http.js"

// the JSON answers as they are on the wire (dates as ISO strings)
const RecordJson = Schema.encodedSchema(TaskRecord)
const PageJson = Schema.encodedSchema(TaskApi.TaskPage)
const StatsJson = Schema.encodedSchema(TaskApi.Stats)
/** The parts of the OpenAPI document the tests read. */
const Operation = Schema.Struct({
  responses: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ content: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })) })
  }),
  security: Schema.optional(Schema.Unknown)
})
const SpecJson = Schema.Struct({
  openapi: Schema.String,
  paths: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ get: Schema.optional(Operation), post: Schema.optional(Operation) })
  }),
  components: Schema.Struct({
    securitySchemes: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    schemas: Schema.Record({ key: Schema.String, value: Schema.Unknown })
  })
})

class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {}

const Echo = Task.make("echo", {
  payload: Schema.Struct({ text: Schema.String, times: Schema.optional(Schema.Int) }),
  success: Schema.String,
  retry: Schedule.stop
})
const EchoLive = Echo.toLayer(({ text, times }) => Effect.succeed(text.repeat(times ?? 1).toUpperCase()))

/** Fails on its first run, succeeds on the next ones (for the manual retry). */
const FailOnce = Task.make("fail-once", { failure: Boom, success: Schema.Number, retry: Schedule.stop })
const failOnceLive = (runs: Ref.Ref<number>) =>
  FailOnce.toLayer(() =>
    Effect.flatMap(Ref.updateAndGet(runs, (n) => n + 1), (n) =>
      n === 1 ? Effect.fail(new Boom({ reason: "first run fails" })) : Effect.succeed(n))
  )

/** Reports 40 % and then waits for the test to open its gate. */
const Gated = Task.make("gated", { payload: Schema.Struct({ label: Schema.String }), retry: Schedule.stop })
const gatedLive = (gate: Deferred.Deferred<void>) =>
  Gated.toLayer(() => Effect.zipRight(Progress.set(40), Deferred.await(gate)))

/** Declared but never run by this engine: its tasks stay pending. */
const Parked = Task.make("parked", { payload: Schema.Struct({ n: Schema.Int }) })

interface Fixture {
  readonly engine: TaskEngine.TaskEngine
  readonly gate: Deferred.Deferred<void>
  readonly runs: Ref.Ref<number>
}

/** A fresh engine over a memory store, with every test task registered, per test. */
const withEngine = <A, E>(
  body: (fixture: Fixture) => Effect.Effect<A, E, import("effect").Scope.Scope>,
  options: TaskEngine.Options = {}
) =>
  Effect.gen(function*() {
    const gate = yield* Deferred.make<void>()
    const runs = yield* Ref.make(0)
    const handlers = Layer.mergeAll(EchoLive, failOnceLive(runs), gatedLive(gate))
    const layer = handlers.pipe(
      Layer.provideMerge(TaskEngine.layer({ definitions: [Parked], ...options })),
      Layer.provide(TaskStore.layerMemory)
    )
    return yield* Effect.flatMap(TaskEngine.TaskEngine, (engine) => body({ engine, gate, runs })).pipe(
      Effect.provide(layer)
    )
  })


const statusOf = (engine: TaskEngine.TaskEngine, id: string) =>
  Effect.map(engine.get(id), (record) => Option.getOrThrow(record).status)

describe("HTTP API", () => {
  it.scoped("POST /tasks/{name} answers 202 with the id at once; the task then runs", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const reply = yield* call(api, "POST", "/tasks/echo", { body: { text: "hi", times: 2 } })
        assert.strictEqual(reply.status, 202)
        assert.isString(reply.as(TaskApi.Submitted).id)
        assert.strictEqual(yield* engine.await(Echo, reply.as(TaskApi.Submitted).id), "HIHI")
      })))

  it.scoped("400 names the bad field from the task's Schema, and nothing is stored", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const reply = yield* call(api, "POST", "/tasks/echo", { body: { text: "hi", times: 1.5 } })
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(reply.as(Tagged)._tag, "PayloadInvalid")
        assert.strictEqual(reply.as(PayloadInvalid).path, "times")
        assert.strictEqual(reply.as(PayloadInvalid).task, "echo")
        const missing = yield* call(api, "POST", "/tasks/echo", { body: {} })
        assert.strictEqual(missing.status, 400)
        assert.strictEqual(missing.as(PayloadInvalid).path, "text")
        assert.strictEqual((yield* engine.list()).length, 0)
      })))

  it.scoped("400 MalformedBody when the body is not JSON", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const reply = yield* call(api, "POST", "/tasks/echo", {
          rawBody: "{not json",
          headers: { "content-type": "application/json" }
        })
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(reply.as(Tagged)._tag, "MalformedBody")
      })))

  it.scoped("404 UnknownTask for a name no definition has", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const reply = yield* call(api, "POST", "/tasks/nope", { body: { a: 1 } })
        assert.strictEqual(reply.status, 404)
        assert.deepStrictEqual(reply.json, { _tag: "UnknownTask", name: "nope" })
      })))

  it.scoped("409 with the existing task's id for a repeated Idempotency-Key", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const headers = { "idempotency-key": "order-42" }
        const first = yield* call(api, "POST", "/tasks/parked", { body: { n: 1 }, headers })
        assert.strictEqual(first.status, 202)
        const second = yield* call(api, "POST", "/tasks/parked", { body: { n: 2 }, headers })
        assert.strictEqual(second.status, 409)
        assert.strictEqual(second.as(Tagged)._tag, "DuplicateTask")
        assert.strictEqual(second.as(DuplicateTask).id, first.as(TaskApi.Submitted).id)
        assert.strictEqual(second.as(DuplicateTask).idempotencyKey, "order-42")
        assert.strictEqual((yield* engine.list()).length, 1)
      })))

  it.scoped("413 over the body limit, whether the length is declared or the body streamed", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine, { maxBodyBytes: 64 })
        const declared = yield* call(api, "POST", "/tasks/echo", { body: { text: "x".repeat(100) } })
        assert.strictEqual(declared.status, 413)
        assert.deepStrictEqual(declared.json, { _tag: "PayloadTooLarge", limitBytes: 64 })
        const chunk = new TextEncoder().encode(`{"text":"${"y".repeat(40)}`)
        let sent = 0
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            // an endless body: the server must stop reading at the limit
            sent++
            controller.enqueue(sent === 1 ? chunk : new TextEncoder().encode("y".repeat(40)))
            if (sent > 1000) controller.close()
          }
        })
        const streamed = yield* call(api, "POST", "/tasks/echo", { rawBody: stream })
        assert.strictEqual(streamed.status, 413)
        assert.isBelow(sent, 10)
        const fits = yield* call(api, "POST", "/tasks/echo", { body: { text: "ok" } })
        assert.strictEqual(fits.status, 202)
      })))

  it.scoped("429 QueueFull when the engine's backlog is at maxQueued", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        assert.strictEqual((yield* call(api, "POST", "/tasks/parked", { body: { n: 1 } })).status, 202)
        const full = yield* call(api, "POST", "/tasks/parked", { body: { n: 2 } })
        assert.strictEqual(full.status, 429)
        assert.deepStrictEqual(full.json, { _tag: "QueueFull", task: "parked", maxQueued: 1 })
      }), { maxQueued: 1 }))

  it.scoped("GET /tasks/{id} gives the record encoded with the TaskRecord Schema; 404 when unknown", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const id = yield* engine.submit(Echo, { text: "a" })
        yield* engine.await(Echo, id)
        const reply = yield* call(api, "GET", `/tasks/${id}`)
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.as(RecordJson).id, id)
        assert.strictEqual(reply.as(RecordJson).status, "completed")
        assert.strictEqual(reply.as(RecordJson).result, "A")
        assert.strictEqual(reply.as(RecordJson).progress, 100)
        assert.strictEqual(reply.as(RecordJson).createdAt, new Date(0).toISOString())
        const missing = yield* call(api, "GET", "/tasks/nope")
        assert.strictEqual(missing.status, 404)
        assert.deepStrictEqual(missing.json, { _tag: "TaskNotFound", id: "nope" })
      })))

  it.scoped("GET /tasks filters by status and name and pages with the cursor", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const parked = yield* engine.submitMany(Parked, [1, 2, 3, 4, 5].map((n) => ({ n })))
        const echo = yield* engine.submit(Echo, { text: "z" })
        yield* engine.await(Echo, echo)
        const seen: Array<string> = []
        let cursor: string | null = null
        let pages = 0
        do {
          const query: string = `/tasks?status=pending&limit=2${cursor === null ? "" : `&cursor=${cursor}`}`
          const page = yield* call(api, "GET", query)
          assert.strictEqual(page.status, 200)
          for (const task of page.as(PageJson).tasks) {
            assert.strictEqual(task.status, "pending")
            seen.push(task.id)
          }
          cursor = page.as(PageJson).nextCursor
          pages++
        } while (cursor !== null && pages < 10)
        assert.strictEqual(pages, 3)
        assert.deepStrictEqual(seen, [...parked].reverse())
        const byName = yield* call(api, "GET", "/tasks?name=echo")
        assert.deepStrictEqual(byName.as(PageJson).tasks.map((t) => t.id), [echo])
        assert.strictEqual(byName.as(PageJson).nextCursor, null)
        const both = yield* call(api, "GET", "/tasks?status=completed&status=pending&limit=100")
        assert.strictEqual(both.as(PageJson).tasks.length, 6)
        const bad = yield* call(api, "GET", "/tasks?status=sleeping")
        assert.strictEqual(bad.status, 400)
        assert.strictEqual(bad.as(Tagged)._tag, "HttpApiDecodeError")
      })))

  it.scoped("POST /tasks/{id}/cancel cancels once, then says false; 404 when unknown", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const id = yield* engine.submit(Parked, { n: 1 })
        const first = yield* call(api, "POST", `/tasks/${id}/cancel`)
        assert.deepStrictEqual([first.status, first.json], [200, { id, cancelled: true }])
        assert.strictEqual(yield* statusOf(engine, id), "cancelled")
        const again = yield* call(api, "POST", `/tasks/${id}/cancel`)
        assert.deepStrictEqual(again.json, { id, cancelled: false })
        assert.strictEqual((yield* call(api, "POST", "/tasks/nope/cancel")).status, 404)
      })))

  it.scoped("POST /tasks/{id}/retry runs a failed task again; false for a completed one; 404 when unknown", () =>
    withEngine(({ engine, runs }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const id = yield* engine.submit(FailOnce, undefined)
        const failed = yield* Effect.flip(engine.await(FailOnce, id))
        assert.strictEqual(failed._tag, "Boom")
        const reply = yield* call(api, "POST", `/tasks/${id}/retry`)
        assert.deepStrictEqual([reply.status, reply.json], [200, { id, retried: true }])
        assert.strictEqual(yield* engine.await(FailOnce, id), 2)
        assert.strictEqual(yield* Ref.get(runs), 2)
        const done = yield* call(api, "POST", `/tasks/${id}/retry`)
        assert.deepStrictEqual(done.json, { id, retried: false })
        assert.strictEqual((yield* call(api, "POST", "/tasks/nope/retry")).status, 404)
      })))

  it.scoped("GET /tasks/{id}/events streams the record's changes, then `end`; 404 when unknown", () =>
    withEngine(({ engine, gate }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const id = yield* engine.submit(Gated, { label: "<b>not html</b>" })
        const response = yield* open(api, `/tasks/${id}/events`)
        assert.strictEqual(response.status, 200)
        assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/)
        const stream = events(response)
        yield* stream.until((e) => e.event === "record" && e.as(RecordJson).progress === 40)
        yield* Deferred.succeed(gate, undefined)
        const all = yield* stream.until((e) => e.event === "end")
        const records = all.filter((e) => e.event === "record").map((e) => e.as(RecordJson))
        assert.isTrue(records.every((r) => r.id === id))
        assert.strictEqual(records[records.length - 1]!.status, "completed")
        assert.strictEqual(records[records.length - 1]!.progress, 100)
        assert.deepStrictEqual(records[0]!.payload, { label: "<b>not html</b>" })
        assert.strictEqual(all[all.length - 1]!.event, "end")
        assert.isTrue(stream.ended() || (yield* stream.until(() => false)).length === all.length)
        assert.strictEqual((yield* call(api, "GET", "/tasks/nope/events")).status, 404)
      })))

  it.scoped("GET /events streams every record change", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const stream = events(yield* open(api, "/events"))
        // the subscription is live once the first comment arrived; submit through the API
        const reply = yield* call(api, "POST", "/tasks/echo", { body: { text: "live" } })
        const seen = yield* stream.until((e) => e.event === "record" && e.as(RecordJson).status === "completed")
        const mine = seen.filter((e) => e.event === "record" && e.as(RecordJson).id === reply.as(TaskApi.Submitted).id)
        assert.strictEqual(mine[mine.length - 1]!.as(RecordJson).result, "LIVE")
        yield* stream.close
      })))

  it.scoped("a configured bearer token guards tasks and metrics, compared whole; page and OpenAPI stay open", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine, { token: "s3cret-token" })
        const none = yield* call(api, "GET", "/tasks")
        assert.strictEqual(none.status, 401)
        assert.strictEqual(none.as(Tagged)._tag, "Unauthorized")
        assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/)
        for (const wrong of ["s3cret-toke", "s3cret-token2", "S3cret-token", "x"]) {
          assert.strictEqual((yield* call(api, "GET", "/tasks", { token: wrong })).status, 401, wrong)
        }
        assert.strictEqual((yield* call(api, "POST", "/tasks/echo", { body: { text: "a" } })).status, 401)
        assert.strictEqual((yield* call(api, "GET", "/metrics")).status, 401)
        assert.strictEqual((yield* call(api, "GET", "/events")).status, 401)
        assert.strictEqual((yield* engine.list()).length, 0)
        assert.strictEqual((yield* call(api, "GET", "/tasks", { token: "s3cret-token" })).status, 200)
        assert.strictEqual((yield* call(api, "POST", "/tasks/echo", { body: { text: "a" }, token: "s3cret-token" })).status, 202)
        assert.strictEqual((yield* call(api, "GET", "/")).status, 200)
        assert.strictEqual((yield* call(api, "GET", "/openapi.json")).status, 200)
      })))

  it.scoped("without a token every endpoint is open", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        assert.strictEqual((yield* call(api, "GET", "/tasks")).status, 200)
        assert.strictEqual((yield* call(api, "GET", "/metrics")).status, 200)
      })))

  it.scoped("GET /metrics is Prometheus text with the engine's counters, gauges and histogram per task", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const value = (text: string, series: string): number => {
          const line = text.split("\n").find((l) => l.startsWith(`${series} `))
          return line === undefined ? 0 : Number(line.slice(series.length + 1))
        }
        const before = (yield* call(api, "GET", "/metrics")).text
        const ids = yield* engine.submitMany(Echo, [{ text: "a" }, { text: "b" }])
        yield* Effect.forEach(ids, (id) => engine.await(Echo, id))
        const reply = yield* call(api, "GET", "/metrics")
        assert.strictEqual(reply.status, 200)
        assert.match(reply.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
        const text = reply.text
        const completed = "effect_tasks_completed_total{task=\"echo\"}"
        assert.strictEqual(value(text, completed) - value(before, completed), 2)
        const submitted = "effect_tasks_submitted_total{task=\"echo\"}"
        assert.strictEqual(value(text, submitted) - value(before, submitted), 2)
        assert.include(text, "# TYPE effect_tasks_completed_total counter")
        assert.include(text, "# TYPE effect_tasks_running gauge")
        assert.include(text, "# TYPE effect_tasks_queued gauge")
        assert.include(text, "# TYPE effect_tasks_duration_seconds histogram")
        const inf = "effect_tasks_duration_seconds_bucket{task=\"echo\",le=\"+Inf\"}"
        const count = "effect_tasks_duration_seconds_count{task=\"echo\"}"
        assert.strictEqual(value(text, inf), value(text, count))
        assert.strictEqual(value(text, count) - value(before, count), 2)
        for (const line of text.trim().split("\n")) {
          assert.match(line, /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/, line)
        }
      })))

  it.scoped("GET /stats gives this engine's figures as JSON", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const id = yield* engine.submit(Echo, { text: "a" })
        yield* engine.await(Echo, id)
        const reply = yield* call(api, "GET", "/stats")
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.as(StatsJson).total.completed, 1)
        assert.strictEqual(reply.as(StatsJson).tasks["echo"]?.submitted, 1)
        assert.isString(reply.as(StatsJson).timestamp)
      })))

  it.scoped("GET /openapi.json documents every endpoint, its statuses and the bearer scheme", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const spec = (yield* call(api, "GET", "/openapi.json")).as(SpecJson)
        assert.strictEqual(spec.openapi, "3.1.0")
        assert.deepStrictEqual(Object.keys(spec.paths).sort(), [
          "/events",
          "/metrics",
          "/stats",
          "/tasks",
          "/tasks/{id}",
          "/tasks/{id}/cancel",
          "/tasks/{id}/events",
          "/tasks/{id}/retry",
          "/tasks/{name}/submit"
        ])
        const submit = spec.paths["/tasks/{name}/submit"]?.post
        for (const status of ["202", "400", "401", "403", "404", "409", "413", "415", "429", "503"]) {
          assert.property(submit?.responses, status)
        }
        assert.deepStrictEqual(submit?.security, [{ bearer: [] }])
        assert.deepStrictEqual(spec.components.securitySchemes["bearer"], { type: "http", scheme: "bearer" })
        assert.property(spec.paths["/tasks/{id}/events"]?.get?.responses["200"]?.content, "text/event-stream")
        assert.property(spec.components.schemas, "PayloadInvalid")
      })))

  it.scoped("GET / serves the dashboard: self-contained, locked down by CSP, data written as text", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const reply = yield* call(api, "GET", "/")
        assert.strictEqual(reply.status, 200)
        assert.match(reply.headers.get("content-type") ?? "", /^text\/html/)
        assert.include(reply.headers.get("content-security-policy") ?? "", "default-src 'none'")
        assert.notMatch(reply.text, /(src|href)=["']?(https?:)?\/\//)
        assert.notMatch(reply.text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/)
        assert.include(reply.text, "textContent")
      })))

  it.scoped("a basePath is stripped before routing (a Supabase function's name); other paths 404", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine, { basePath: "/process-data" })
        const reply = yield* call(api, "POST", "/process-data/tasks/echo?priority=3", { body: { text: "p" } })
        assert.strictEqual(reply.status, 202)
        assert.strictEqual(Option.getOrThrow(yield* engine.get(reply.as(TaskApi.Submitted).id)).priority, 3)
        assert.strictEqual((yield* call(api, "GET", "/process-data")).status, 200)
        assert.strictEqual((yield* call(api, "GET", "/elsewhere/tasks")).status, 404)
      })))

  it.scoped("an accepted submit keeps the runtime alive with WaitUntil until the engine is idle", () =>
    withEngine(({ engine, gate }) =>
      Effect.gen(function*() {
        const registered: Array<Promise<unknown>> = []
        const settled: Array<boolean> = []
        const ctx = {
          waitUntil: (promise: Promise<unknown>) => {
            const index = registered.push(promise) - 1
            settled[index] = false
            promise.then(() => {
              settled[index] = true
            })
          }
        }
        const api = yield* serve(engine, {}, WaitUntil.layerContext(ctx))
        const first = yield* call(api, "POST", "/tasks/gated", { body: { label: "a" } })
        const second = yield* call(api, "POST", "/tasks/echo", { body: { text: "b" } })
        assert.strictEqual(second.status, 202)
        assert.strictEqual(registered.length, 2)
        yield* engine.await(Echo, second.as(TaskApi.Submitted).id)
        yield* Effect.yieldNow()
        assert.deepStrictEqual(settled, [false, false])
        assert.strictEqual(yield* statusOf(engine, first.as(TaskApi.Submitted).id), "processing")
        yield* Deferred.succeed(gate, undefined)
        yield* Effect.promise(() => Promise.all(registered))
        assert.strictEqual(yield* statusOf(engine, first.as(TaskApi.Submitted).id), "completed")
      })))

  const delayedKeepAlive = (keepAlive: "idle" | "drained") =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const registered: Array<Promise<unknown>> = []
        let settled = false
        const ctx = {
          waitUntil: (promise: Promise<unknown>) => {
            registered.push(promise)
            promise.then(() => {
              settled = true
            })
          }
        }
        const api = yield* serve(engine, { keepAlive }, WaitUntil.layerContext(ctx))
        const reply = yield* call(api, "POST", "/tasks/echo?delayMs=60000", { body: { text: "later" } })
        assert.strictEqual(reply.status, 202)
        // real time passes for the watcher (it polls on the handler's live clock); the engine's
        // clock is the test's, so the task stays pending until the clock is moved
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 400)))
        const settledBefore = settled
        yield* TestClock.adjust("1 minute")
        yield* engine.await(Echo, reply.as(TaskApi.Submitted).id)
        yield* Effect.promise(() => Promise.all(registered))
        return settledBefore
      }))

  it.scoped("keepAlive \"idle\" holds the runtime while a task waits for a later time", () =>
    Effect.map(delayedKeepAlive("idle"), (settledBefore) => assert.isFalse(settledBefore)))

  it.scoped("keepAlive \"drained\" lets the runtime go once nothing is runnable now", () =>
    Effect.map(delayedKeepAlive("drained"), (settledBefore) => assert.isTrue(settledBefore)))
})
