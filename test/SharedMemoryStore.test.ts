import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option, Schema, Scope, Stream, TestClock } from "effect"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import * as EngineState from "../src/engine/EngineState.js"
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

  it.scoped("a producer's await ends when a worker engine finishes the task", () =>
    Effect.gen(function*() {
      const Slow = Task.make("slow", { payload: Schema.String, success: Schema.String })
      const store = yield* TaskStore.makeMemory()
      yield* engineOn(store, Slow.toLayer((text) => Effect.as(Effect.sleep("1 second"), text)).pipe(
        Layer.provideMerge(TaskEngine.layer())
      ))
      const submit = yield* engineOn(store, TaskEngine.layer({ definitions: [Slow] }))
      const id = yield* submit.submit(Slow, "done")
      const awaited = yield* Effect.fork(submit.await(Slow, id))
      yield* TestClock.adjust(0)
      assert.strictEqual(yield* status(store, id), "processing")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(awaited), "done")
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

  it.scoped("whenFull wait: room made by another engine's claim lets the waiting submit go on", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore.makeMemory()
      const submit = yield* engineOn(store, producer({ maxQueued: 1, whenFull: "wait" }))
      yield* submit.submit(Echo, "one")
      const waiting = yield* Effect.fork(submit.submit(Echo, "two"))
      yield* TestClock.adjust(0)
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      // a worker engine comes and claims "one": the backlog has room
      const work = yield* engineOn(store, worker())
      yield* TestClock.adjust(0)
      const id = yield* Fiber.join(waiting)
      assert.strictEqual(yield* work.await(Echo, id), "TWO")
    }))

  it.scoped("whenFull wait: room made by another engine's cancel lets the waiting submit go on", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore.makeMemory()
      const submit = yield* engineOn(store, producer({ maxQueued: 1, whenFull: "wait" }))
      const other = yield* engineOn(store, producer())
      const first = yield* submit.submit(Echo, "one")
      const waiting = yield* Effect.fork(submit.submit(Echo, "two"))
      yield* TestClock.adjust(0)
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      assert.isTrue(yield* other.cancel(first))
      yield* TestClock.adjust(0)
      const id = yield* Fiber.join(waiting)
      assert.strictEqual(yield* status(store, id), "pending")
    }))

  it.scoped("whenFull wait on a shared store looks again every pollInterval", () =>
    Effect.gen(function*() {
      const memory = yield* TaskStore.makeMemory()
      // shared, and without the memory store's signals: as a store of another process
      const { onRoom: _room, onWakeup: _wakeup, ...parts } = memory
      const store = TaskStore.make({ ...parts, shared: true, wakeups: Stream.never })
      const submit = yield* engineOn(store, producer({ maxQueued: 1, whenFull: "wait", pollInterval: "1 second" }))
      const first = yield* submit.submit(Echo, "one")
      const waiting = yield* Effect.fork(submit.submit(Echo, "two"))
      yield* TestClock.adjust(0)
      assert.strictEqual(yield* memory.cancel(first as TaskId), "cancelled")
      yield* TestClock.adjust(0)
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* status(memory, yield* Fiber.join(waiting)), "pending")
    }))
})

describe("whenFull wait", () => {
  it.scoped("an interrupted submit waiting for room leaves nothing behind in the engine", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore.makeMemory()
      const submit = yield* engineOn(store, producer({ maxQueued: 1, whenFull: "wait" }))
      const state = EngineState.ofService.get(submit)!
      yield* submit.submit(Echo, "one")
      const waiting = yield* Effect.forEach(["a", "b", "c", "d", "e"], (text) => Effect.fork(submit.submit(Echo, text)))
      yield* TestClock.adjust(0)
      assert.strictEqual(state.room.size, 5)
      yield* Fiber.interruptAll(waiting.slice(0, 4))
      assert.strictEqual(state.room.size, 1)
      // the one left still gets in when room is made
      yield* engineOn(store, worker())
      yield* TestClock.adjust(0)
      yield* Fiber.join(waiting[4]!)
      assert.strictEqual(state.room.size, 0)
      assert.strictEqual(yield* store.pendingCount, 0)
    }))
})
