import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Schema, Scope, TestClock } from "effect"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import type { TaskId } from "../src/services/TaskRecord.js"

// Several engines on one memory store: a producer that only submits, and workers that run.

const Echo = Task.make("echo", { payload: Schema.String, success: Schema.String })
const EchoLive = Echo.toLayer((text) => Effect.succeed(text.toUpperCase()))

/** Builds an engine layer over `store` in the current scope. */
const engineOn = (
  store: TaskStore.TaskStore,
  layer: Layer.Layer<TaskEngine.TaskEngine, never, TaskStore.TaskStore>
) =>
  Effect.map(
    Layer.build(layer.pipe(Layer.provide(Layer.succeed(TaskStore.TaskStore, store)))),
    (ctx) => ctx.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine
  )

const producer = (options: TaskEngine.Options = {}) => TaskEngine.layer({ definitions: [Echo], ...options })
const worker = (options: TaskEngine.Options = {}) => EchoLive.pipe(Layer.provideMerge(TaskEngine.layer(options)))

const status = (store: TaskStore.TaskStore, id: string) =>
  Effect.map(store.get(id as TaskId), (r) => Option.getOrThrow(r).status)

describe("engines sharing one memory store", () => {
  it.scoped("a producer's submit wakes an idle worker engine", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore.makeMemory()
      const work = yield* engineOn(store, worker())
      const submit = yield* engineOn(store, producer())
      yield* TestClock.adjust(0)
      const id = yield* submit.submit(Echo, "hi")
      yield* TestClock.adjust(0)
      assert.strictEqual(yield* status(store, id), "completed")
      assert.strictEqual(yield* work.await(Echo, id), "HI")
    }))

  it.scoped("a producer's delayed submit runs on the worker engine when it falls due", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore.makeMemory()
      yield* engineOn(store, worker())
      const submit = yield* engineOn(store, producer())
      yield* TestClock.adjust(0)
      const id = yield* submit.submit(Echo, "later", { delay: "10 seconds" })
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(yield* status(store, id), "pending")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* status(store, id), "completed")
    }))

  it.scoped("a task released by one engine's shutdown wakes another idle engine", () =>
    Effect.gen(function*() {
      const Long = Task.make("long", { payload: Schema.Void })
      const started = yield* Deferred.make<void>()
      const store = yield* TaskStore.makeMemory()
      const runs = (body: Effect.Effect<void>) =>
        Long.toLayer(() => body).pipe(Layer.provideMerge(TaskEngine.layer({ shutdownTimeout: "1 second" })))
      const firstScope = yield* Scope.make()
      const first = yield* Scope.extend(
        engineOn(store, runs(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))),
        firstScope
      )
      const id = yield* first.submit(Long, undefined)
      yield* Deferred.await(started)
      // a second engine starts, finds nothing to claim, and idles
      yield* engineOn(store, runs(Effect.void))
      yield* TestClock.adjust(0)
      // the first engine closes: after its shutdownTimeout the task goes back to pending
      const closing = yield* Effect.fork(Scope.close(firstScope, Exit.void))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      yield* TestClock.adjust(0)
      const after = Option.getOrThrow(yield* store.get(id as TaskId))
      assert.strictEqual(after.status, "completed")
      assert.strictEqual(after.attempt, 2)
    }))
})

