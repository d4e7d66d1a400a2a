/**
 * The HTTP API's edges (issue 12): content types and cross-site requests, event streams that end
 * for real, an OpenAPI document and a `/metrics` text that lint clean, and errors that are always
 * JSON, never empty and never a whole echo of a bad value.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Option, Schedule, Schema } from "effect"
import { Task, TaskEngine, TaskStore, WebHandler } from "../src/index.js"
import { TaskRecord } from "../src/services/TaskRecord.js"
import type { Handler } from "./support/http.js"
import { call, events, open } from "./support/http.js"

const RecordJson = Schema.encodedSchema(TaskRecord)

const Echo = Task.make("echo", {
  payload: Schema.Struct({ text: Schema.String }),
  success: Schema.String,
  retry: Schedule.stop
})
const EchoLive = Echo.toLayer(({ text }) => Effect.succeed(text.toUpperCase()))

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
    const layer = Layer.mergeAll(EchoLive, gatedLive(gate)).pipe(
      Layer.provideMerge(TaskEngine.layer({})),
      Layer.provide(TaskStore.layerMemory)
    )
    return yield* Effect.flatMap(TaskEngine.TaskEngine, (engine) => body({ engine, gate })).pipe(Effect.provide(layer))
  })

/** The web handler over `engine` (and whatever `extra` adds), disposed with the test's scope. */
const serve = (
  engine: TaskEngine.TaskEngine,
  options: WebHandler.Options = {},
  extra: Layer.Layer<never> = Layer.empty
) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() =>
        WebHandler.make(Layer.merge(Layer.succeed(TaskEngine.TaskEngine, engine), extra), {
          disposeOnUnload: false,
          ...options
        })
      ),
      (web) => Effect.promise(() => web.dispose())
    ),
    (web): Handler => web.handler
  )

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
