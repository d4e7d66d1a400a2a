/**
 * The HTTP API's edges (issue 12): content types and cross-site requests, event streams that end
 * for real, an OpenAPI document and a `/metrics` text that lint clean, and errors that are always
 * JSON, never empty and never a whole echo of a bad value.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { accessSync, constants } from "node:fs"
import { delimiter, join } from "node:path"
import { HttpServer } from "@effect/platform"
import { Cause, Deferred, Effect, Layer, Logger, Option, Schedule, Schema } from "effect"
import * as NodeServer from "../src/http/NodeServer.js"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import { TaskRecord } from "../src/services/TaskRecord.js"
import { call, events, open, serve, Tagged } from "./support/http.js"
import { lint } from "./support/promlint.js"

const RecordJson = Schema.encodedSchema(TaskRecord)

const Echo = Task.make("echo", {
  payload: Schema.Struct({ text: Schema.String }),
  success: Schema.String,
  retry: Schedule.stop
})
const EchoLive = Echo.toLayer(({ text }) => Effect.succeed(text.toUpperCase()))

/** No payload, nothing to do. */
const Noop = Task.make("noop", { retry: Schedule.stop })
const NoopLive = Noop.toLayer(() => Effect.void)

/** Waits for the test to open its gate. */
const Gated = Task.make("gated", { retry: Schedule.stop })
const gatedLive = (gate: Deferred.Deferred<void>) => Gated.toLayer(() => Deferred.await(gate))

interface Fixture {
  readonly engine: TaskEngine.TaskEngine
  readonly gate: Deferred.Deferred<void>
}

/** A fresh engine over a memory store, per test. */
const withEngine = <A, E>(body: (fixture: Fixture) => Effect.Effect<A, E, import("effect").Scope.Scope>) =>
  Effect.gen(function*() {
    const gate = yield* Deferred.make<void>()
    const layer = Layer.mergeAll(EchoLive, NoopLive, gatedLive(gate)).pipe(
      Layer.provideMerge(TaskEngine.layer({})),
      Layer.provide(TaskStore.layerMemory)
    )
    return yield* Effect.flatMap(TaskEngine.TaskEngine, (engine) => body({ engine, gate })).pipe(Effect.provide(layer))
  })


const json = { "content-type": "application/json" }

describe("server-sent events end for real", () => {
  it.scoped("a running task streams to `end`; a (re)connect once it is terminal gets 204 and no body", () =>
    withEngine(({ engine, gate }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const id = yield* engine.submit(Gated, undefined)
        const first = yield* open(api, `/tasks/${id}/events`)
        assert.strictEqual(first.status, 200)
        const stream = events(first)
        yield* stream.until((e) => e.event === "record" && e.as(RecordJson).status === "processing")
        yield* Deferred.succeed(gate, undefined)
        const seen = yield* stream.until((e) => e.event === "end")
        assert.strictEqual(seen[seen.length - 1]!.event, "end")
        // what an EventSource does after `end`: connect again (with the id it saw last)
        const again = yield* call(api, "GET", `/tasks/${id}/events`, { headers: { "last-event-id": id } })
        assert.strictEqual(again.status, 204)
        assert.strictEqual(again.text, "")
        const done = yield* engine.submit(Echo, { text: "x" })
        yield* engine.await(Echo, done)
        const late = yield* call(api, "GET", `/tasks/${done}/events`)
        assert.strictEqual(late.status, 204)
        assert.strictEqual(late.text, "")
        assert.strictEqual((yield* call(api, "GET", "/tasks/nope/events")).status, 404)
      })))

  it.scoped("GET /events stays open: it has no end to reach (every change of every task)", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const response = yield* open(api, "/events")
        assert.strictEqual(response.status, 200)
        const stream = events(response)
        const id = yield* engine.submit(Echo, { text: "y" })
        yield* engine.await(Echo, id)
        yield* stream.until((e) => e.event === "record" && e.as(RecordJson).status === "completed")
        assert.isFalse(stream.seen().some((e) => e.event === "end"))
        assert.isFalse(stream.ended())
        yield* stream.close
        assert.isTrue(Option.isSome(yield* engine.get(id)))
      })))
})

describe("cross-site requests", () => {
  it.scoped("a body must be declared application/json (or +json): anything else is 415 and nothing is stored", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const body = JSON.stringify({ text: "hi" })
        for (const contentType of ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
          const reply = yield* call(api, "POST", "/tasks/echo", { rawBody: body, headers: { "content-type": contentType } })
          assert.strictEqual(reply.status, 415, contentType)
          assert.deepStrictEqual(reply.json, { _tag: "UnsupportedMediaType", contentType })
        }
        // a web Request with a string body and no type is text/plain; a raw stream has none at all
        const untyped = yield* call(api, "POST", "/tasks/echo", {
          rawBody: new Blob([body]).stream()
        })
        assert.strictEqual(untyped.status, 415)
        assert.deepStrictEqual(untyped.json, { _tag: "UnsupportedMediaType", contentType: "" })
        assert.strictEqual((yield* engine.list()).length, 0)
        for (const contentType of ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"]) {
          const reply = yield* call(api, "POST", "/tasks/echo", { rawBody: body, headers: { "content-type": contentType } })
          assert.strictEqual(reply.status, 202, contentType)
        }
        // no body, no type needed (a task without payload)
        assert.strictEqual((yield* call(api, "POST", "/tasks/noop", { headers: { "content-type": "text/plain" } })).status, 202)
      })))

  it.scoped("a page of another site is refused with 403 (Sec-Fetch-Site or a foreign Origin); same-origin and non-browsers pass", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const submit = (headers: Record<string, string>) =>
          call(api, "POST", "/tasks/echo", { body: { text: "x" }, headers: { ...json, ...headers } })
        const refused = [
          { "sec-fetch-site": "cross-site" },
          { "sec-fetch-site": "cross-site", origin: "http://127.0.0.1" },
          { origin: "http://evil.example" },
          { origin: "http://127.0.0.1:8080" },
          { origin: "null" },
          { "sec-fetch-site": "same-site", origin: "http://sub.127.0.0.1" }
        ]
        for (const headers of refused) {
          const reply = yield* submit(headers)
          assert.strictEqual(reply.status, 403, JSON.stringify(headers))
          assert.strictEqual(reply.as(Tagged)._tag, "CrossSiteRequest")
        }
        assert.strictEqual((yield* engine.list()).length, 0)
        // reading is refused too: an EventSource or fetch of another site gets nothing
        const read = yield* call(api, "GET", "/tasks", { headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors" } })
        assert.strictEqual(read.status, 403)
        assert.strictEqual((yield* call(api, "GET", "/events", { headers: { origin: "http://evil.example" } })).status, 403)
        const passing = [
          {},
          { "sec-fetch-site": "same-origin", origin: "http://127.0.0.1" },
          { "sec-fetch-site": "none" },
          { origin: "http://127.0.0.1" },
          // the browser's Fetch Metadata outranks a Host a proxy rewrote
          { "sec-fetch-site": "same-origin", origin: "https://public.example" }
        ]
        for (const headers of passing) {
          assert.strictEqual((yield* submit(headers)).status, 202, JSON.stringify(headers))
        }
        // a link from another site to the dashboard is a navigation: it opens
        const link = yield* call(api, "GET", "/", { headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" } })
        assert.strictEqual(link.status, 200)
        const posted = yield* call(api, "POST", "/tasks/echo", {
          body: { text: "x" },
          headers: { ...json, "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" }
        })
        assert.strictEqual(posted.status, 403)
      })))

  it.scoped("allowedOrigins lets those origins through with CORS headers (preflight answered); crossSite \"allow\" turns the check off", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine, { allowedOrigins: ["https://app.example.com/"] })
        const headers = { ...json, "sec-fetch-site": "cross-site", origin: "https://app.example.com" }
        const preflight = yield* call(api, "OPTIONS", "/tasks/echo", {
          headers: { ...headers, "access-control-request-method": "POST", "access-control-request-headers": "content-type" }
        })
        assert.strictEqual(preflight.status, 204)
        assert.strictEqual(preflight.headers.get("access-control-allow-origin"), "https://app.example.com")
        assert.include(preflight.headers.get("access-control-allow-headers") ?? "", "content-type")
        const allowed = yield* call(api, "POST", "/tasks/echo", { body: { text: "x" }, headers })
        assert.strictEqual(allowed.status, 202)
        assert.strictEqual(allowed.headers.get("access-control-allow-origin"), "https://app.example.com")
        const other = yield* call(api, "POST", "/tasks/echo", { body: { text: "x" }, headers: { ...headers, origin: "https://evil.example" } })
        assert.strictEqual(other.status, 403)
        const open = yield* serve(engine, { crossSite: "allow" })
        const anyone = yield* call(open, "POST", "/tasks/echo", { body: { text: "x" }, headers: { ...headers, origin: "https://evil.example" } })
        assert.strictEqual(anyone.status, 202)
      })))

  it.scoped("on the Node server the Origin is compared with the Host header; routing edges are the same", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const server = yield* Layer.build(
          NodeServer.layer({ port: 0 }).pipe(Layer.provide(Layer.succeed(TaskEngine.TaskEngine, engine)))
        )
        const httpServer = yield* Effect.provide(HttpServer.HttpServer, server)
        const port = httpServer.address._tag === "TcpAddress" ? httpServer.address.port : 0
        const base = `http://127.0.0.1:${port}`
        const post = (origin: string) =>
          Effect.promise(() =>
            fetch(`${base}/tasks/echo`, { method: "POST", headers: { ...json, origin }, body: JSON.stringify({ text: "n" }) })
              .then((r) => r.status)
          )
        assert.strictEqual(yield* post(base), 202)
        assert.strictEqual(yield* post(`http://localhost:${port}`), 403)
        // the Node server routes as the web handler does: long names, JSON 404 and 405
        const get = (path: string, method = "GET") =>
          Effect.promise(() => fetch(`${base}${path}`, { method }).then((r) => r.text().then((text) => ({ status: r.status, text, allow: r.headers.get("allow") }))))
        const long = yield* get(`/tasks/${"n".repeat(200)}`)
        assert.deepStrictEqual([long.status, JSON.parse(long.text)], [404, { _tag: "TaskNotFound", id: "n".repeat(200) }])
        const nowhere = yield* get("/nowhere")
        assert.deepStrictEqual([nowhere.status, JSON.parse(nowhere.text)._tag], [404, "NotFound"])
        const wrong = yield* get("/tasks", "DELETE")
        assert.deepStrictEqual([wrong.status, wrong.allow], [405, "GET"])
      })))
})

describe("the dashboard's Content-Security-Policy", () => {
  it.scoped("allows its one inline script by hash, with no 'unsafe-inline' for scripts", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const page = yield* call(api, "GET", "/")
        const policy = page.headers.get("content-security-policy") ?? ""
        const scriptSrc = policy.split(";").map((d) => d.trim()).find((d) => d.startsWith("script-src")) ?? ""
        assert.notInclude(scriptSrc, "unsafe-inline")
        const scripts = [...page.text.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!)
        assert.strictEqual(scripts.length, 1)
        const digest = createHash("sha256").update(scripts[0]!, "utf8").digest("base64")
        assert.strictEqual(scriptSrc, `script-src 'sha256-${digest}'`)
        assert.notMatch(page.text, /\son[a-z]+=/i)
      })))
})

/** A task whose name is as long as `Task.make` allows. */
const longName = "n".repeat(200)
const Long = Task.make(longName, { retry: Schedule.stop })

describe("HTTP edges: every error is JSON, none empty, none a whole echo", () => {
  it.scoped("JSON nested 5,000 levels deep is a 400 MalformedBody, not an empty 500", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const deep = "[".repeat(5000) + "]".repeat(5000)
        const reply = yield* call(api, "POST", "/tasks/echo", { rawBody: deep, headers: json })
        assert.strictEqual(reply.status, 400)
        assert.deepStrictEqual(reply.json, {
          _tag: "MalformedBody",
          reason: "it nests arrays and objects deeper than 256 levels"
        })
        const object = `{"text":"a","x":${"{\"y\":".repeat(300)}1${"}".repeat(300)}}`
        assert.strictEqual((yield* call(api, "POST", "/tasks/echo", { rawBody: object, headers: json })).status, 400)
        // brackets inside strings are text, not nesting
        const text = yield* call(api, "POST", "/tasks/echo", { body: { text: "[".repeat(1000) } })
        assert.strictEqual(text.status, 202)
        assert.strictEqual((yield* engine.list()).length, 1)
      })))

  it.scoped("a defect is logged and answered 500 with a JSON body", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const logged: Array<string> = []
        const logger = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ cause, logLevel, message }) => {
            logged.push(`${logLevel.label} ${String(message)} ${Cause.pretty(cause)}`)
          })
        )
        const broken: TaskEngine.TaskEngine = { ...engine, get: () => Effect.die(new Error("the store's driver threw")) }
        const api = yield* serve(broken, {}, logger)
        const reply = yield* call(api, "GET", "/tasks/some-id")
        assert.strictEqual(reply.status, 500)
        assert.match(reply.headers.get("content-type") ?? "", /^application\/json/)
        assert.strictEqual(reply.as(Tagged)._tag, "InternalServerError")
        assert.isAbove(reply.text.length, 20)
        const line = logged.find((l) => l.startsWith("ERROR GET /tasks/some-id failed"))
        assert.isDefined(line, logged.join("\n"))
        assert.include(line!, "the store's driver threw")
      })))

  it.scoped("error bodies repeat at most 200 characters of a bad value", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const huge = "a".repeat(200_000)
        const invalid = yield* call(api, "POST", "/tasks/echo", { body: huge })
        assert.strictEqual(invalid.status, 400)
        assert.strictEqual(invalid.as(Tagged)._tag, "PayloadInvalid")
        assert.isBelow(invalid.text.length, 600)
        const key = yield* call(api, "POST", "/tasks/echo", { body: { text: "x" }, headers: { "idempotency-key": "k".repeat(5000) } })
        assert.strictEqual(key.status, 400)
        assert.strictEqual(key.as(Tagged)._tag, "HttpApiDecodeError")
        assert.isBelow(key.text.length, 1500)
        const status = yield* call(api, "GET", `/tasks?status=${"z".repeat(5000)}`)
        assert.strictEqual(status.status, 400)
        assert.isBelow(status.text.length, 3000)
        const unknown = yield* call(api, "POST", `/tasks/${"u".repeat(900)}`, { body: {} })
        assert.strictEqual(unknown.status, 404)
        assert.strictEqual(unknown.as(Tagged)._tag, "UnknownTask")
        assert.isBelow(unknown.text.length, 300)
      })))

  it.scoped("path parameters take names as long as Task.make allows", () =>
    Effect.gen(function*() {
      const layer = Long.toLayer(() => Effect.void).pipe(
        Layer.provideMerge(TaskEngine.layer({})),
        Layer.provide(TaskStore.layerMemory)
      )
      const engine = yield* Effect.provide(TaskEngine.TaskEngine, yield* Layer.build(layer))
      const api = yield* serve(engine)
      const reply = yield* call(api, "POST", `/tasks/${longName}`)
      assert.strictEqual(reply.status, 202)
      const id = Schema.decodeUnknownSync(Schema.Struct({ id: Schema.String }))(reply.json).id
      assert.strictEqual(Option.getOrThrow(yield* engine.get(id)).name, longName)
      const missing = yield* call(api, "GET", `/tasks/${"i".repeat(150)}`)
      assert.deepStrictEqual(missing.json, { _tag: "TaskNotFound", id: "i".repeat(150) })
      const unknown = yield* call(api, "POST", `/tasks/${"é".repeat(200)}`)
      assert.deepStrictEqual(unknown.json, { _tag: "UnknownTask", name: "é".repeat(200) })
    }))

  it.scoped("unknown routes answer JSON 404; wrong methods JSON 405 with Allow", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const nowhere = yield* call(api, "GET", "/nowhere")
        assert.strictEqual(nowhere.status, 404)
        assert.deepStrictEqual(nowhere.json, { _tag: "NotFound", message: "No route for GET /nowhere" })
        const cases: ReadonlyArray<readonly [string, string, string]> = [
          ["DELETE", "/tasks", "GET"],
          ["PUT", "/tasks/abc", "GET, POST"],
          ["GET", "/tasks/abc/cancel", "POST"],
          ["POST", "/metrics", "GET"],
          ["DELETE", "/openapi.json", "GET"],
          ["PATCH", "/", "GET"]
        ]
        for (const [method, path, allow] of cases) {
          const reply = yield* call(api, method, path)
          assert.strictEqual(reply.status, 405, `${method} ${path}`)
          assert.strictEqual(reply.headers.get("allow"), allow, `${method} ${path}`)
          assert.strictEqual(reply.as(Tagged)._tag, "MethodNotAllowed")
        }
        const off = yield* serve(engine, { dashboard: false })
        const page = yield* call(off, "GET", "/")
        assert.strictEqual(page.status, 404)
        assert.strictEqual(page.as(Tagged)._tag, "NotFound")
      })))
})

/** The parts of the OpenAPI document these tests read. */
const Parameter = Schema.Struct({ name: Schema.String, in: Schema.String, schema: Schema.Record({ key: Schema.String, value: Schema.Unknown }) })
const Operation = Schema.Struct({ parameters: Schema.optional(Schema.Array(Parameter)) })
const SpecJson = Schema.Struct({
  servers: Schema.Array(Schema.Struct({ url: Schema.String })),
  paths: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ get: Schema.optional(Operation), post: Schema.optional(Operation) })
  })
})

/** promtool on PATH, if installed (Debian's `prometheus` package; .ci/run installs it). */
const promtool = (): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "promtool")
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

describe("OpenAPI and /metrics lint clean", () => {
  it.scoped("no two templated paths are the same to OAS 3.1; integers are integers with ranges; a servers entry", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const spec = (yield* call(yield* serve(engine), "GET", "/openapi.json")).as(SpecJson)
        const shapes = Object.keys(spec.paths).map((path) => path.replace(/\{[^}]+\}/g, "{}"))
        assert.strictEqual(new Set(shapes).size, shapes.length, shapes.join(" "))
        assert.property(spec.paths, "/tasks/{name}/submit")
        assert.notProperty(spec.paths, "/tasks/{name}")
        const param = (path: string, method: "get" | "post", name: string) =>
          spec.paths[path]?.[method]?.parameters?.find((p) => p.name === name)?.schema
        assert.deepInclude(param("/tasks/{name}/submit", "post", "priority"), { type: "integer", minimum: -2147483648, maximum: 2147483647 })
        assert.deepInclude(param("/tasks/{name}/submit", "post", "delayMs"), { type: "integer", minimum: 0 })
        assert.deepInclude(param("/tasks", "get", "limit"), { type: "integer", minimum: 1, maximum: 1000 })
        // no parameter anywhere is a number in a string's clothing
        for (const [path, item] of Object.entries(spec.paths)) {
          for (const op of [item.get, item.post]) {
            for (const p of op?.parameters ?? []) assert.notMatch(String(p.schema["description"] ?? ""), /decoded into a number/, `${path} ${p.name}`)
          }
        }
        assert.deepStrictEqual(spec.servers.map((s) => s.url), ["/"])
        const based = (yield* call(yield* serve(engine, { basePath: "/process-data" }), "GET", "/process-data/openapi.json")).as(SpecJson)
        assert.deepStrictEqual(based.servers.map((s) => s.url), ["/process-data"])
      })))

  it.scoped("POST /tasks/{name}/submit submits; the old POST /tasks/{name} still does; integer parameters are checked", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const Id = Schema.Struct({ id: Schema.String })
        const viaSubmit = yield* call(api, "POST", "/tasks/echo/submit?priority=5&delayMs=0", { body: { text: "a" } })
        assert.strictEqual(viaSubmit.status, 202)
        assert.strictEqual(Option.getOrThrow(yield* engine.get(viaSubmit.as(Id).id)).priority, 5)
        const viaAlias = yield* call(api, "POST", "/tasks/echo?priority=-3", { body: { text: "b" } })
        assert.strictEqual(viaAlias.status, 202)
        assert.strictEqual(Option.getOrThrow(yield* engine.get(viaAlias.as(Id).id)).priority, -3)
        for (const query of ["priority=2147483648", "priority=1.5", "priority=x", "delayMs=-1", "delayMs=Infinity", "delayMs=9e15"]) {
          const reply = yield* call(api, "POST", `/tasks/echo/submit?${query}`, { body: { text: "c" } })
          assert.strictEqual(reply.status, 400, query)
          assert.strictEqual(reply.as(Tagged)._tag, "HttpApiDecodeError", query)
        }
        assert.strictEqual((yield* call(api, "GET", "/tasks?limit=0")).status, 400)
        assert.strictEqual((yield* call(api, "GET", "/tasks?limit=1000")).status, 200)
        // routes next to it are untouched
        assert.strictEqual((yield* call(api, "POST", `/tasks/${viaSubmit.as(Id).id}/cancel`)).status, 200)
      })))

  it.scoped("GET /metrics passes the exposition lint (and promtool check metrics, where installed)", () =>
    withEngine(({ engine }) =>
      Effect.gen(function*() {
        const api = yield* serve(engine)
        const ids = yield* engine.submitMany(Echo, [{ text: "a" }, { text: "b" }])
        yield* Effect.forEach(ids, (id) => engine.await(Echo, id))
        const text = (yield* call(api, "GET", "/metrics")).text
        assert.include(text, "# TYPE effect_tasks_duration_seconds histogram")
        assert.include(text, "# TYPE effect_tasks_completed_total counter")
        assert.deepStrictEqual(lint(text), [])
        const binary = promtool()
        if (binary === undefined) {
          // .ci/run installs promtool and says so: there its absence is a failure
          assert.notStrictEqual(process.env.EFFECT_TASKS_PROMTOOL, "required", "promtool not found on PATH (apt-get install -y prometheus)")
        } else {
          const run = spawnSync(binary, ["check", "metrics"], { input: text, encoding: "utf8" })
          assert.strictEqual(`${run.stdout}${run.stderr}`.trim(), "")
          assert.strictEqual(run.status, 0)
        }
      })))

  it("the exposition lint finds what promtool finds", () => {
    const bad = [
      "# TYPE jobs counter",
      "jobs 1",
      "# HELP latency_ms Latency",
      "# TYPE latency_ms histogram",
      "latency_ms_bucket{le=\"+Inf\"} 1",
      "latency_ms_sum 3",
      "latency_ms_count 1",
      "# HELP wait_milliseconds Wait",
      "# TYPE wait_milliseconds gauge",
      "wait_milliseconds 2",
      "# HELP depth_total Depth",
      "# TYPE depth_total gauge",
      "depth_total 2",
      ""
    ].join("\n")
    assert.deepStrictEqual([...lint(bad)].sort(), [
      "depth_total: non-counter metrics should not have \"_total\" suffix",
      "jobs: counter metrics should have \"_total\" suffix",
      "jobs: no help text",
      "latency_ms: metric names should not contain abbreviated units",
      "wait_milliseconds: use base unit \"seconds\" instead of \"milliseconds\""
    ])
  })
})
