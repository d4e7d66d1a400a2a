/**
 * Engine faults found in review (issue 12): a bad stored time must not spin the timer; a second
 * handler for one name is an error when the layer is built; `cancel` says `true` only for a task
 * that ended cancelled; nothing is counted before its settlement lands. Memory store, virtual time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Queue, Schedule, Schema, Scope, Stream, TestClock } from "effect"
import * as EngineState from "../src/engine/EngineState.js"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import type { TaskStore as TaskStoreService } from "../src/services/TaskStore.js"
import { TaskStore as TaskStoreTag } from "../src/services/TaskStore.js"
import { StoreUnavailable } from "../src/services/TaskError.js"

const Note = Task.make("note", { payload: Schema.Struct({ text: Schema.String }), success: Schema.String })

/** A memory store seen through `wrap` (no in-thread shortcuts, so every call goes through it). */
const wrapped = (wrap: (store: TaskStoreService) => Partial<TaskStoreService>) =>
  Layer.effect(
    TaskStoreTag,
    Effect.map(TaskStoreTag, (store): TaskStoreService => ({ ...store, local: undefined, ahead: undefined, ...wrap(store) }))
  ).pipe(Layer.provide(TaskStore.layerMemory))

describe("engine hardening", () => {
  it.scoped("a stored runAt that is no time does not spin the timer; other tasks still run", () =>
    Effect.gen(function*() {
      let looks = 0
      // the store answers a next runAt that is no time, as a hand-edited row ('infinity') gives
      const store = wrapped(() => ({
        nextRunAt: () =>
          Effect.sync(() => {
            looks++
            return Option.some(new Date(Number.NaN))
          })
      }))
      const context = yield* Layer.build(
        Note.toLayer(({ text }) => Effect.succeed(text)).pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false })),
          Layer.provide(store)
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      yield* TestClock.adjust("10 minutes")
      const id = yield* engine.submit(Note, { text: "good" })
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* engine.await(Note, id), "good")
      assert.isBelow(looks, 50, `the timer looked ${looks} times in 10 minutes`)
    }))

  it.scoped("a second handler for one task name fails the layer with a message that says so", () =>
    Effect.gen(function*() {
      const one = Note.toLayer(() => Effect.succeed("one"))
      const two = Note.toLayer(() => Effect.succeed("two"))
      const exit = yield* Effect.exit(
        Layer.build(Layer.merge(one, two).pipe(Layer.provideMerge(TaskEngine.layer()), Layer.provide(TaskStore.layerMemory)))
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), 'a second handler for task "note"')
    }))

  it.scoped("cancel answers false for a task whose attempt completed before the cancel came", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const settling = yield* Deferred.make<void>()
      // the attempt is over and its settlement on the way when the cancel comes
      const store = wrapped((store) => ({
        settle: (id, owner, settlement) =>
          Effect.zipRight(
            Effect.zipRight(Deferred.succeed(settling, undefined), Deferred.await(gate)),
            store.settle(id, owner, settlement)
          )
      }))
      const context = yield* Layer.build(
        Note.toLayer(({ text }) => Effect.succeed(text)).pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false })),
          Layer.provide(store)
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Note, { text: "done" })
      yield* Deferred.await(settling)
      const cancelling = yield* Effect.fork(engine.cancel(id))
      yield* TestClock.adjust(0)
      yield* Deferred.succeed(gate, undefined)
      assert.isFalse(yield* Fiber.join(cancelling))
      assert.strictEqual(Option.getOrThrow(yield* engine.get(id)).status, "completed")
    }))

  it.scoped("a timed-out attempt is counted when its settlement lands, not before", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const Slow = Task.make("slow", { payload: Schema.Struct({}), timeout: "1 second", retry: Schedule.stop })
      const store = wrapped((store) => ({
        settle: (id, owner, settlement) => Effect.zipRight(Deferred.await(gate), store.settle(id, owner, settlement))
      }))
      const context = yield* Layer.build(
        Slow.toLayer(() => Effect.never).pipe(Layer.provideMerge(TaskEngine.layer({ cleanup: false })), Layer.provide(store))
      )
      // runs before the engine's shutdown, which waits for the settlement
      yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Slow, {})
      yield* TestClock.adjust("2 seconds")
      const before = (yield* engine.metrics).tasks["slow"]
      assert.strictEqual(before?.timedOut ?? 0, 0, "counted before the settlement landed")
      yield* Deferred.succeed(gate, undefined)
      yield* TestClock.adjust(0)
      const record = Option.getOrThrow(yield* engine.get(id))
      assert.notStrictEqual(record.status, "processing")
      assert.strictEqual((yield* engine.metrics).tasks["slow"]?.timedOut, 1)
    }))

  it.scoped("a permanent refusal of the store (SQLSTATE class 22, 23, 42) is not retried", () =>
    Effect.gen(function*() {
      let calls = 0
      const store = wrapped(() => ({
        get: () =>
          Effect.suspend(() => {
            calls++
            return Effect.fail(new StoreUnavailable({ operation: "task_get", reason: "refused (SQLSTATE 22P05)", code: "22P05" }))
          })
      }))
      const context = yield* Layer.build(TaskEngine.layer({ cleanup: false }).pipe(Layer.provide(store)))
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const fiber = yield* Effect.fork(Effect.flip(engine.get("some-id")))
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.code, "22P05")
      assert.isTrue(error.permanent)
      assert.strictEqual(calls, 1)
    }))

  it.scoped("a settlement the store refuses for good fails the task, saying why, instead of retrying for ever", () =>
    Effect.gen(function*() {
      const store = wrapped((store) => ({
        settle: (id, owner, settlement) =>
          settlement._tag === "Completed"
            ? Effect.fail(new StoreUnavailable({ operation: "task_settle", reason: "value too long (SQLSTATE 22001)", code: "22001" }))
            : store.settle(id, owner, settlement)
      }))
      const context = yield* Layer.build(
        Note.toLayer(({ text }) => Effect.succeed(text)).pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false })),
          Layer.provide(store)
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Note, { text: "x" })
      yield* TestClock.adjust("1 second")
      const record = Option.getOrThrow(yield* engine.get(id))
      assert.strictEqual(record.status, "failed")
      assert.strictEqual(record.error?.tag, "StoreRefused")
      assert.include(record.error?.message, "value too long")
    }))

  it.scoped("a result no store can keep fails the task as a defect that says where", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        Note.toLayer(({ text }) => Effect.succeed(`${text}\u0000`)).pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false })),
          Layer.provide(TaskStore.layerMemory)
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Note, { text: "x" })
      yield* TestClock.adjust(0)
      const record = Option.getOrThrow(yield* engine.get(id))
      assert.strictEqual(record.status, "failed")
      assert.include(record.error?.message, "the result cannot be stored")
    }))

  it.effect("a task claimed while the engine shuts down is handed back, and shutdown does not wait out its timeout", () =>
    Effect.gen(function*() {
      const claiming = yield* Deferred.make<void>()
      const answer = yield* Deferred.make<void>()
      const store = wrapped((store) => ({
        claim: (options) =>
          Effect.zipRight(
            Effect.zipRight(Deferred.succeed(claiming, undefined), Deferred.await(answer)),
            store.claim(options)
          )
      }))
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Note.toLayer(({ text }) => Effect.succeed(text)).pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false, maxConcurrent: 1 })),
          Layer.provideMerge(store)
        ),
        scope
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Note, { text: "late" })
      yield* Deferred.await(claiming)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust(0)
      // the claim in flight answers after shutdown began; virtual time stands still, so a
      // shutdown waiting out its 30 s never ends
      yield* Deferred.succeed(answer, undefined)
      yield* Fiber.join(closing)
      const record = Option.getOrThrow(yield* Context.get(context, TaskStoreTag).get(id))
      assert.strictEqual(record.status, "pending")
    }))

  it.scoped("EngineState.check names a broken invariant", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        Note.toLayer(({ text }) => Effect.succeed(text)).pipe(
          Layer.provideMerge(TaskEngine.layer({ cleanup: false, maxConcurrent: 2 })),
          Layer.provide(TaskStore.layerMemory)
        )
      )
      const engine = Context.get(context, TaskEngine.TaskEngine)
      yield* engine.submit(Note, { text: "x" })
      yield* engine.drain
      const state = EngineState.ofService.get(engine)!
      assert.deepStrictEqual(EngineState.check(state, { maxConcurrent: 2 }), [])
      state.claiming = 3
      assert.deepStrictEqual(EngineState.check(state, { maxConcurrent: 2 }), ["claiming 3 outside 0..2"])
      state.claiming = 0
    }))

  it.scoped("TaskStore.make fills what an adapter leaves out: onWakeup relays wakeups, onRoom and onFinished never call", () =>
    Effect.gen(function*() {
      const memory = yield* TaskStore.makeMemory()
      const signals = yield* Queue.unbounded<void>()
      const { onFinished: _f, onRoom: _r, onWakeup: _w, ...parts } = memory
      const store = TaskStore.make({ ...parts, wakeups: Stream.fromQueue(signals) })
      let woken = 0
      yield* store.onWakeup(() => void woken++)
      yield* store.onRoom(() => assert.fail("onRoom called"))
      yield* store.onFinished(() => assert.fail("onFinished called"))
      yield* Queue.offerAll(signals, [undefined, undefined])
      yield* TestClock.adjust(0)
      assert.strictEqual(woken, 2)
    }))
})
