import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Schedule, Schema, Stream, TestClock } from "effect"
import { ErrorReporter, Progress, Task, TaskEngine, TaskError, TaskStore } from "../src/index.js"
import type { TaskId } from "../src/services/TaskRecord.js"
import { maxBehindOf } from "../src/engine/Dispatcher.js"

class Transient extends Schema.TaggedError<Transient>()("Transient", { reason: Schema.String }) {}
class Permanent extends Schema.TaggedError<Permanent>()("Permanent", { reason: Schema.String }) {}

const Flaky = Task.make("flaky", {
  payload: Schema.Struct({ failTimes: Schema.Int }),
  success: Schema.Struct({ attempts: Schema.Int }),
  failure: Schema.Union(Transient, Permanent)
})

const Echo = Task.make("echo", {
  payload: Schema.Struct({ text: Schema.String, width: Schema.optional(Schema.Int) }),
  success: Schema.String,
  retry: Schedule.stop
})

/** A task that sleeps its payload's millis, times out after 1 s, and is retried once 1 s later. */
const sleepyTask = (name: string) =>
  Task.make(name, {
    payload: Schema.Struct({ millis: Schema.Number }),
    timeout: "1 second",
    retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1)))
  })

/** Runs `body` with an engine over a fresh memory store, the given handler layers registered. */
const withEngine = <A, E>(
  handlers: Layer.Layer<never, never, TaskEngine.TaskEngine>,
  body: (engine: TaskEngine.TaskEngine) => Effect.Effect<A, E>,
  options: TaskEngine.Options = {}
) =>
  Effect.flatMap(TaskEngine.TaskEngine, body).pipe(
    Effect.provide(
      handlers.pipe(Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 5, ...options })), Layer.provide(TaskStore.layerMemory))
    )
  )

const EchoLive = Echo.toLayer(({ text }) => Effect.succeed(text.toUpperCase()))

const flakyLive = (calls: Ref.Ref<number>) =>
  Flaky.toLayer(({ failTimes }, task) =>
    Effect.gen(function*() {
      yield* Ref.update(calls, (n) => n + 1)
      if (task.attempt <= failTimes) return yield* new Transient({ reason: `attempt ${task.attempt}` })
      return { attempts: task.attempt }
    })
  )

const record = (engine: TaskEngine.TaskEngine, id: string) =>
  Effect.map(engine.get(id), Option.getOrThrow)

describe("TaskEngine", () => {
  it.effect("submit returns an id at once and the task completes with its typed result", () =>
    withEngine(EchoLive, (engine) =>
      Effect.gen(function*() {
        const id = yield* engine.submit(Echo, { text: "hi" })
        assert.strictEqual((yield* record(engine, id)).status, "pending")
        const result = yield* engine.await(Echo, id)
        assert.strictEqual(result, "HI")
        const done = yield* record(engine, id)
        assert.strictEqual(done.status, "completed")
        assert.strictEqual(done.progress, 100)
        assert.strictEqual(done.attempt, 1)
        assert.strictEqual(done.result, "HI")
        assert.isNotNull(done.finishedAt)
      })))

  it.effect("a bad payload fails with PayloadInvalid naming the field, and nothing is stored", () =>
    withEngine(EchoLive, (engine) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(engine.submit(Echo, { text: "x", width: 1.5 }))
        assert.instanceOf(error, TaskError.PayloadInvalid)
        assert.strictEqual(error.path, "width")
        assert.include(error.message, "width")
        const missing = yield* Effect.flip(engine.submit(Echo, {} as never))
        assert.strictEqual((missing as TaskError.PayloadInvalid).path, "text")
        assert.strictEqual((yield* engine.list()).length, 0)
      })))

  it.effect("retries on the default schedule: 1 s then 2 s of backoff, exact to the millisecond", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const start = yield* TestClock.currentTimeMillis
          const id = yield* engine.submit(Flaky, { failTimes: 2 })
          const done = yield* Effect.fork(engine.await(Flaky, id))
          yield* engine.drain
          let r = yield* record(engine, id)
          assert.strictEqual(r.status, "pending")
          assert.strictEqual(r.attempt, 1)
          assert.strictEqual(r.runAt.getTime(), start + 1000)
          assert.strictEqual(r.error?.tag, "Transient")
          yield* TestClock.adjust("999 millis")
          yield* engine.drain
          assert.strictEqual(yield* Ref.get(calls), 1)
          yield* TestClock.adjust("1 millis")
          yield* engine.drain
          r = yield* record(engine, id)
          assert.strictEqual(yield* Ref.get(calls), 2)
          assert.strictEqual(r.runAt.getTime(), start + 1000 + 2000)
          yield* TestClock.adjust("1999 millis")
          yield* engine.drain
          assert.strictEqual(yield* Ref.get(calls), 2)
          yield* TestClock.adjust("1 millis")
          assert.deepStrictEqual(yield* Fiber.join(done), { attempts: 3 })
          assert.strictEqual((yield* record(engine, id)).attempt, 3)
        }))
    }))

  it.effect("gives up after 3 attempts by default with the last typed failure", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Flaky, { failTimes: 10 })
          const done = yield* Effect.fork(Effect.flip(engine.await(Flaky, id)))
          yield* TestClock.adjust("3 seconds")
          const error = yield* Fiber.join(done)
          assert.instanceOf(error, Transient)
          assert.strictEqual((error as Transient).reason, "attempt 3")
          const r = yield* record(engine, id)
          assert.strictEqual(r.status, "failed")
          assert.strictEqual(r.attempt, 3)
          assert.strictEqual(yield* Ref.get(calls), 3)
        }))
    }))

  it.effect("retryWhile retries only the errors it accepts", () =>
    Effect.gen(function*() {
      const Picky = Task.make("picky", {
        payload: Schema.Struct({ permanent: Schema.Boolean }),
        failure: Schema.Union(Transient, Permanent),
        retryWhile: (error) => error._tag === "Transient"
      })
      const calls = yield* Ref.make(0)
      const PickyLive = Picky.toLayer(({ permanent }) =>
        Effect.flatMap(
          Ref.updateAndGet(calls, (n) => n + 1),
          (): Effect.Effect<void, Transient | Permanent> =>
            permanent ? Effect.fail(new Permanent({ reason: "no" })) : Effect.fail(new Transient({ reason: "later" }))
        )
      )
      yield* withEngine(PickyLive, (engine) =>
        Effect.gen(function*() {
          const permanent = yield* engine.submit(Picky, { permanent: true })
          yield* engine.drain
          assert.strictEqual((yield* record(engine, permanent)).status, "failed")
          assert.strictEqual(yield* Ref.get(calls), 1)
          const transient = yield* engine.submit(Picky, { permanent: false })
          yield* engine.drain
          assert.strictEqual((yield* record(engine, transient)).status, "pending")
          yield* TestClock.adjust("3 seconds")
          yield* engine.drain
          assert.strictEqual((yield* record(engine, transient)).status, "failed")
          assert.strictEqual(yield* Ref.get(calls), 4)
        }))
    }))

  it.effect("never runs more than maxConcurrent at once (peak measured)", () =>
    Effect.gen(function*() {
      const Slow = Task.make("slow", { payload: Schema.Number })
      const running = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const SlowLive = Slow.toLayer(() =>
        Effect.acquireUseRelease(
          Effect.flatMap(Ref.updateAndGet(running, (n) => n + 1), (n) => Ref.update(peak, (p) => Math.max(p, n))),
          () => Effect.sleep("1 second"),
          () => Ref.update(running, (n) => n - 1)
        )
      )
      yield* withEngine(SlowLive, (engine) =>
        Effect.gen(function*() {
          yield* engine.submitMany(Slow, Array.from({ length: 20 }, (_, i) => i))
          for (let i = 0; i < 7; i++) {
            yield* TestClock.adjust("1 second")
          }
          yield* engine.drain
          assert.strictEqual(yield* Ref.get(peak), 3)
          const all = yield* engine.list({ status: "completed" })
          assert.strictEqual(all.length, 20)
        }), { maxConcurrent: 3 })
    }))

  it.effect("a task waiting out its backoff holds no slot", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(Layer.merge(flakyLive(calls), EchoLive), (engine) =>
        Effect.gen(function*() {
          const flaky = yield* engine.submit(Flaky, { failTimes: 1 })
          yield* engine.drain
          assert.strictEqual((yield* record(engine, flaky)).status, "pending")
          // the only slot is free while flaky waits 1 s: echo runs now
          const echo = yield* engine.submit(Echo, { text: "free" })
          yield* engine.drain
          assert.strictEqual((yield* record(engine, echo)).status, "completed")
          assert.strictEqual((yield* record(engine, flaky)).status, "pending")
          yield* TestClock.adjust("1 second")
          yield* engine.drain
          assert.strictEqual((yield* record(engine, flaky)).status, "completed")
        }), { maxConcurrent: 1 })
    }))

  it.effect("cancel interrupts a running task: finalizers run, status cancelled, awaiters get TaskCancelled", () =>
    Effect.gen(function*() {
      const Forever = Task.make("forever", { payload: Schema.Void })
      const started = yield* Deferred.make<void>()
      const finalized = yield* Ref.make(false)
      const ForeverLive = Forever.toLayer(() =>
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
          Effect.ensuring(Ref.set(finalized, true))
        )
      )
      yield* withEngine(ForeverLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Forever, undefined)
          const awaiting = yield* Effect.fork(Effect.flip(engine.await(Forever, id)))
          yield* Deferred.await(started)
          assert.strictEqual((yield* record(engine, id)).status, "processing")
          assert.isTrue(yield* engine.cancel(id))
          assert.isTrue(yield* Ref.get(finalized))
          assert.strictEqual((yield* record(engine, id)).status, "cancelled")
          const error = yield* Fiber.join(awaiting)
          assert.instanceOf(error, TaskError.TaskCancelled)
          assert.isFalse(yield* engine.cancel(id))
          const missing = yield* Effect.flip(engine.cancel("no-such-task"))
          assert.instanceOf(missing, TaskError.TaskNotFound)
        }))
    }))

  it.effect("cancel withdraws a pending task before it runs", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Flaky, { failTimes: 0 }, { delay: "1 minute" })
          assert.isTrue(yield* engine.cancel(id))
          yield* TestClock.adjust("2 minutes")
          yield* engine.drain
          assert.strictEqual((yield* record(engine, id)).status, "cancelled")
          assert.strictEqual(yield* Ref.get(calls), 0)
          assert.instanceOf(yield* Effect.flip(engine.await(Flaky, id)), TaskError.TaskCancelled)
        }))
    }))

  it.effect("a timeout interrupts the attempt, fails it with TaskTimeout, and the schedule retries it", () =>
    Effect.gen(function*() {
      const Sleepy = sleepyTask("sleepy")
      const interrupted = yield* Ref.make(0)
      const SleepyLive = Sleepy.toLayer(({ millis }) =>
        Effect.sleep(millis).pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1)))
      )
      yield* withEngine(SleepyLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Sleepy, { millis: 5_000 })
          const done = yield* Effect.fork(Effect.flip(engine.await(Sleepy, id)))
          yield* TestClock.adjust("1 second")
          yield* engine.drain
          let r = yield* record(engine, id)
          assert.strictEqual(r.status, "pending")
          assert.strictEqual(r.error?.tag, "TaskTimeout")
          yield* TestClock.adjust("2 seconds")
          const error = yield* Fiber.join(done)
          assert.instanceOf(error, TaskError.TaskTimeout)
          assert.strictEqual((error as TaskError.TaskTimeout).attempt, 2)
          r = yield* record(engine, id)
          assert.strictEqual(r.status, "failed")
          assert.strictEqual(yield* Ref.get(interrupted), 2)
          const snapshot = yield* engine.metrics
          assert.strictEqual(snapshot.tasks["sleepy"]?.timedOut, 2)
        }))
    }))

  it.effect("a handler gets its task's id, name and attempt, and nothing of the engine's", () =>
    Effect.gen(function*() {
      const Info = Task.make("info", { payload: Schema.Struct({}), success: Schema.Unknown })
      const InfoLive = Info.toLayer((_, task) => Effect.succeed(JSON.parse(JSON.stringify(task))))
      yield* withEngine(InfoLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Info, {})
          const seen = yield* engine.await(Info, id)
          assert.deepStrictEqual(seen, { id, name: "info", attempt: 1, units: 0 })
        }))
    }))

  it.effect("a timed-out attempt is counted once, also when its settlement is written behind", () =>
    Effect.gen(function*() {
      const Sleepy = sleepyTask("sleepy-behind")
      // a store that says it is shared and settles in batches, as a SQL store does
      const BatchingStore = Layer.effect(
        TaskStore.TaskStore,
        Effect.map(TaskStore.TaskStore, (store): TaskStore.TaskStore => ({
          ...store,
          shared: true,
          settleMany: (owner, settlements) =>
            Effect.forEach(settlements, ([id, settlement]) => store.settle(id, owner, settlement))
        }))
      ).pipe(Layer.provide(TaskStore.layerMemory))
      const layer = Sleepy.toLayer(({ millis }) => Effect.sleep(millis)).pipe(
        Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 1, cleanup: false })),
        Layer.provide(BatchingStore)
      )
      yield* Effect.gen(function*() {
        const engine = yield* TaskEngine.TaskEngine
        const id = yield* engine.submit(Sleepy, { millis: 5_000 })
        const done = yield* Effect.fork(Effect.flip(engine.await(Sleepy, id)))
        yield* TestClock.adjust("1 second")
        yield* TestClock.adjust("2 seconds")
        assert.instanceOf(yield* Fiber.join(done), TaskError.TaskTimeout)
        const counts = (yield* engine.metrics).tasks["sleepy-behind"]
        assert.strictEqual(counts?.timedOut, 2)
        assert.strictEqual(counts?.retried, 1)
        assert.strictEqual(counts?.failed, 1)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a defect is not retried; await dies with TaskDefect", () =>
    Effect.gen(function*() {
      const Buggy = Task.make("buggy", { payload: Schema.Void })
      const calls = yield* Ref.make(0)
      const BuggyLive = Buggy.toLayer(() => Effect.zipRight(Ref.update(calls, (n) => n + 1), Effect.die(new Error("boom"))))
      yield* withEngine(BuggyLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Buggy, undefined)
          const exit = yield* Effect.exit(engine.await(Buggy, id))
          assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
          const r = yield* record(engine, id)
          assert.strictEqual(r.status, "failed")
          assert.strictEqual(r.error?.tag, "Defect")
          assert.include(r.error?.cause ?? "", "boom")
          assert.strictEqual(yield* Ref.get(calls), 1)
        }))
    }))

  it.effect("an idempotency key gives the first id back, or DuplicateTask on request", () =>
    withEngine(EchoLive, (engine) =>
      Effect.gen(function*() {
        const first = yield* engine.submit(Echo, { text: "a" }, { idempotencyKey: "k1" })
        const second = yield* engine.submit(Echo, { text: "b" }, { idempotencyKey: "k1" })
        assert.strictEqual(second, first)
        const error = yield* Effect.flip(engine.submit(Echo, { text: "c" }, { idempotencyKey: "k1", onDuplicate: "fail" }))
        assert.instanceOf(error, TaskError.DuplicateTask)
        assert.strictEqual((error as TaskError.DuplicateTask).id, first)
        yield* engine.drain
        assert.strictEqual((yield* engine.list()).length, 1)
      })))

  it.effect("higher priority runs first, FIFO within one priority, and aging keeps low priorities from starving", () =>
    Effect.gen(function*() {
      const Ordered = Task.make("ordered", { payload: Schema.String })
      const gate = yield* Deferred.make<void>()
      const order = yield* Ref.make<ReadonlyArray<string>>([])
      const OrderedLive = Ordered.toLayer((label) =>
        Effect.zipRight(
          label === "gate" ? Deferred.await(gate) : Effect.void,
          Ref.update(order, (o) => [...o, label])
        )
      )
      yield* withEngine(OrderedLive, (engine) =>
        Effect.gen(function*() {
          yield* engine.submit(Ordered, "gate")
          yield* TestClock.adjust(0)
          yield* engine.submit(Ordered, "old-low", { priority: 0 })
          yield* TestClock.adjust("2 minutes")
          yield* engine.submit(Ordered, "low-1", { priority: 0 })
          yield* engine.submit(Ordered, "high-1", { priority: 1 })
          yield* engine.submit(Ordered, "low-2", { priority: 0 })
          yield* engine.submit(Ordered, "high-2", { priority: 1 })
          yield* Deferred.succeed(gate, undefined)
          yield* engine.drain
          // old-low waited 2 minutes: more than one level (1 minute) of aging
          assert.deepStrictEqual(yield* Ref.get(order), ["gate", "old-low", "high-1", "high-2", "low-1", "low-2"])
        }), { maxConcurrent: 1 })
    }))

  it.effect("a delayed task does not run before its time, and does not hold drain", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Flaky, { failTimes: 0 }, { delay: "10 seconds" })
          yield* engine.drain
          yield* TestClock.adjust("9999 millis")
          yield* engine.drain
          assert.strictEqual(yield* Ref.get(calls), 0)
          yield* TestClock.adjust("1 millis")
          yield* engine.drain
          assert.strictEqual(yield* Ref.get(calls), 1)
          assert.strictEqual((yield* record(engine, id)).status, "completed")
        }))
    }))

  it.effect("progress from Progress.set and Progress.advance is visible through get and watch", () =>
    Effect.gen(function*() {
      const Chunked = Task.make("chunked", { payload: Schema.Int })
      const step = yield* Deferred.make<void>()
      const ChunkedLive = Chunked.toLayer((chunks) =>
        Effect.gen(function*() {
          yield* Progress.set(10)
          yield* Deferred.await(step)
          for (let i = 0; i < chunks; i++) {
            yield* Progress.advance(1, chunks)
          }
        })
      )
      yield* withEngine(ChunkedLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Chunked, 4)
          const seen = yield* Effect.fork(Stream.runCollect(engine.watch(id)))
          yield* TestClock.adjust(0)
          assert.strictEqual((yield* record(engine, id)).progress, 10)
          yield* Deferred.succeed(step, undefined)
          const records = Array.from(yield* Fiber.join(seen))
          const progress = records.map((r) => r.progress)
          assert.includeMembers(progress, [10, 25, 50, 75, 100])
          assert.strictEqual(records[records.length - 1]!.status, "completed")
        }))
    }))

  it.effect("a fiber that outlives its attempt never reports progress to the worker's next task", () =>
    Effect.gen(function*() {
      const Leaky = Task.make("leaky", { payload: Schema.String })
      const gate = yield* Deferred.make<void>()
      const LeakyLive = Leaky.toLayer((label) =>
        label === "first"
          ? Effect.asVoid(Effect.forkDaemon(Effect.zipRight(Effect.sleep("5 seconds"), Progress.set(77))))
          : Effect.zipRight(Progress.set(10), Deferred.await(gate))
      )
      yield* withEngine(LeakyLive, (engine) =>
        Effect.gen(function*() {
          const first = yield* engine.submit(Leaky, "first")
          const second = yield* engine.submit(Leaky, "second")
          yield* TestClock.adjust("5 seconds")
          assert.strictEqual((yield* record(engine, second)).progress, 10)
          assert.strictEqual((yield* record(engine, first)).progress, 100)
          yield* Deferred.succeed(gate, undefined)
          yield* engine.drain
        }), { maxConcurrent: 1 })
    }))

  it.effect("maxQueued bounds the backlog: QueueFull, or wait for room", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const Blocked = Task.make("blocked", { payload: Schema.Int })
      const BlockedLive = Blocked.toLayer(() => Deferred.await(gate))
      yield* withEngine(BlockedLive, (engine) =>
        Effect.gen(function*() {
          yield* engine.submit(Blocked, 0)
          yield* TestClock.adjust(0)
          yield* engine.submit(Blocked, 1)
          yield* engine.submit(Blocked, 2)
          const full = yield* Effect.flip(engine.submit(Blocked, 3))
          assert.instanceOf(full, TaskError.QueueFull)
          const waiting = yield* Effect.fork(engine.submit(Blocked, 4, { whenFull: "wait" }))
          yield* TestClock.adjust(0)
          assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
          yield* Deferred.succeed(gate, undefined)
          const id = yield* Fiber.join(waiting)
          yield* engine.drain
          assert.strictEqual((yield* record(engine, id)).status, "completed")
        }), { maxConcurrent: 1, maxQueued: 2 })
    }))

  it.effect("cleanup deletes finished tasks past their retention, on its interval", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const old = yield* engine.submit(Flaky, { failTimes: 0 })
          yield* engine.drain
          yield* TestClock.adjust("5 days")
          const recent = yield* engine.submit(Flaky, { failTimes: 0 })
          const waiting = yield* engine.submit(Flaky, { failTimes: 0 }, { delay: "30 days" })
          yield* engine.drain
          yield* TestClock.adjust("2 days")
          assert.isTrue(Option.isSome(yield* engine.get(old)))
          yield* TestClock.adjust("1 hour")
          assert.isTrue(Option.isNone(yield* engine.get(old)))
          assert.isTrue(Option.isSome(yield* engine.get(recent)))
          assert.isTrue(Option.isSome(yield* engine.get(waiting)))
        }), { cleanup: { interval: "1 hour", retention: "7 days" } })
    }))

  it.effect("cleanup keeps a status longer when retentionByStatus says so", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const ok = yield* engine.submit(Flaky, { failTimes: 0 })
          const bad = yield* engine.submit(Flaky, { failTimes: 1 }, { idempotencyKey: "bad" })
          yield* engine.drain
          yield* engine.cancel(bad)
          yield* TestClock.adjust("2 days")
          assert.strictEqual(yield* engine.cleanup, 1)
          assert.isTrue(Option.isNone(yield* engine.get(ok)))
          assert.isTrue(Option.isSome(yield* engine.get(bad)))
        }), { cleanup: { interval: "365 days", retention: "1 day", retentionByStatus: { cancelled: "30 days" } } })
    }))

  it.effect("closing the engine lets running tasks finish within shutdownTimeout", () =>
    Effect.gen(function*() {
      const Short = Task.make("short", { payload: Schema.Void })
      const ShortLive = Short.toLayer(() => Effect.sleep("2 seconds"))
      const store = yield* TaskStore.makeMemory()
      const engineLayer = ShortLive.pipe(
        Layer.provideMerge(TaskEngine.layer({ shutdownTimeout: "5 seconds" })),
        Layer.provide(Layer.succeed(TaskStore.TaskStore, store))
      )
      const id = yield* Effect.scoped(
        Effect.gen(function*() {
          const engine = yield* Layer.build(engineLayer).pipe(Effect.map((ctx) => ctx.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine))
          const id = yield* engine.submit(Short, undefined)
          yield* TestClock.adjust(0)
          return id
        })
      ).pipe(Effect.fork, Effect.tap(() => TestClock.adjust("2 seconds")), Effect.flatMap(Fiber.join))
      const r = Option.getOrThrow(yield* store.get(id as never))
      assert.strictEqual(r.status, "completed")
    }))

  it.effect("closing the engine hands tasks still running after shutdownTimeout back to pending", () =>
    Effect.gen(function*() {
      const Long = Task.make("long", { payload: Schema.Void })
      const finalized = yield* Ref.make(false)
      const LongLive = Long.toLayer(() => Effect.never.pipe(Effect.ensuring(Ref.set(finalized, true))))
      const store = yield* TaskStore.makeMemory()
      const engineLayer = LongLive.pipe(
        Layer.provideMerge(TaskEngine.layer({ shutdownTimeout: "5 seconds" })),
        Layer.provide(Layer.succeed(TaskStore.TaskStore, store))
      )
      const fiber = yield* Effect.scoped(
        Effect.gen(function*() {
          const ctx = yield* Layer.build(engineLayer)
          const engine = ctx.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine
          const id = yield* engine.submit(Long, undefined)
          yield* TestClock.adjust(0)
          return id
        })
      ).pipe(Effect.fork)
      for (let i = 0; i < 8; i++) yield* TestClock.adjust("1 second")
      const id = yield* Fiber.join(fiber)
      const r = Option.getOrThrow(yield* store.get(id as never))
      assert.strictEqual(r.status, "pending")
      assert.strictEqual(r.attempt, 1)
      assert.isTrue(yield* Ref.get(finalized))
      // another engine on the same store finishes it
      const LongDone = Long.toLayer(() => Effect.void)
      yield* Effect.scoped(
        Effect.gen(function*() {
          const ctx = yield* Layer.build(
            LongDone.pipe(Layer.provideMerge(TaskEngine.layer()), Layer.provide(Layer.succeed(TaskStore.TaskStore, store)))
          )
          const engine = ctx.unsafeMap.get(TaskEngine.TaskEngine.key) as TaskEngine.TaskEngine
          yield* engine.await(Long, id)
        })
      )
      const after = Option.getOrThrow(yield* store.get(id as never))
      assert.strictEqual(after.status, "completed")
      assert.strictEqual(after.attempt, 2)
    }))

  it.effect("error reports carry the failure, with Redacted payload fields hidden", () =>
    Effect.gen(function*() {
      const Mail = Task.make("mail", {
        payload: Schema.Struct({ to: Schema.String, apiKey: Schema.Redacted(Schema.String) }),
        failure: Permanent,
        retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1)))
      })
      const MailLive = Mail.toLayer(() => Effect.fail(new Permanent({ reason: "smtp down" })))
      const reporter = yield* ErrorReporter.makeMemory()
      yield* withEngine(
        MailLive.pipe(Layer.provide(Layer.empty)),
        (engine) =>
          Effect.gen(function*() {
            const { Redacted } = yield* Effect.promise(() => import("effect"))
            const id = yield* engine.submit(Mail, { to: "a@b.c", apiKey: Redacted.make("secret-key") })
            yield* engine.drain
            yield* TestClock.adjust("1 second")
            yield* engine.drain
            const reports = yield* reporter.reports
            assert.strictEqual(reports.length, 2)
            assert.isFalse(reports[0]!.context.final)
            assert.isTrue(reports[1]!.context.final)
            assert.strictEqual(reports[1]!.taskId, id)
            assert.include(reports[1]!.error, "smtp down")
            assert.strictEqual(reports[1]!.context.tag, "Permanent")
            assert.deepStrictEqual(reports[1]!.context.payload, { to: "a@b.c", apiKey: "<redacted>" })
            assert.notInclude(JSON.stringify(reports), "secret-key")
          }),
        { errorReports: "attempts" }
      ).pipe(Effect.provideService(ErrorReporter.ErrorReporter, reporter))
    }))

  it.effect("metrics count each lifecycle event per task name", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          yield* engine.submit(Flaky, { failTimes: 0 })
          yield* engine.submit(Flaky, { failTimes: 1 })
          const cancelled = yield* engine.submit(Flaky, { failTimes: 0 }, { delay: "1 hour" })
          yield* engine.cancel(cancelled)
          yield* engine.drain
          yield* TestClock.adjust("1 second")
          yield* engine.drain
          const m = (yield* engine.metrics).tasks["flaky"]!
          assert.strictEqual(m.submitted, 3)
          assert.strictEqual(m.started, 3)
          assert.strictEqual(m.completed, 2)
          assert.strictEqual(m.retried, 1)
          assert.strictEqual(m.cancelled, 1)
          assert.strictEqual(m.running, 0)
          assert.strictEqual(m.queued, 0)
          assert.strictEqual(m.duration.count, 3)
        }))
    }))

  it.effect("retry runs a failed task again from attempt 1", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      yield* withEngine(flakyLive(calls), (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Flaky, { failTimes: 1 })
          const other = yield* engine.submit(Echo, { text: "x" })
          yield* engine.cancel(id)
          assert.isFalse(yield* engine.retry(other))
          assert.isTrue(yield* engine.retry(id))
          yield* engine.drain
          yield* TestClock.adjust("1 second")
          const result = yield* engine.await(Flaky, id)
          assert.deepStrictEqual(result, { attempts: 2 })
        }))
    }))

  it.effect("a handler layer's own services are provided to the handler", () =>
    Effect.gen(function*() {
      class Greeting extends Effect.Service<Greeting>()("test/Greeting", { succeed: { word: "hello" } }) {}
      const Greet = Task.make("greet", { payload: Schema.String, success: Schema.String })
      const GreetLive = Greet.toLayer((name) => Effect.map(Greeting, (g) => `${g.word} ${name}`)).pipe(
        Layer.provide(Greeting.Default)
      )
      yield* withEngine(GreetLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Greet, "world")
          assert.strictEqual(yield* engine.await(Greet, id), "hello world")
        }))
    }))

  it.effect("with tracing on, each attempt runs in a span carrying the task's name, id and attempt", () =>
    Effect.gen(function*() {
      const Traced = Task.make("traced", { payload: Schema.Void, failure: Transient })
      const seen = yield* Ref.make<ReadonlyArray<{ name: string; id: unknown; attempt: unknown }>>([])
      const TracedLive = Traced.toLayer((_, task) =>
        Effect.gen(function*() {
          const span = yield* Effect.orDie(Effect.currentSpan)
          yield* Ref.update(seen, (all) => [
            ...all,
            { name: span.name, id: span.attributes.get("task.id"), attempt: span.attributes.get("task.attempt") }
          ])
          if (task.attempt === 1) return yield* new Transient({ reason: "once" })
        })
      )
      yield* withEngine(TracedLive, (engine) =>
        Effect.gen(function*() {
          const id = yield* engine.submit(Traced, undefined)
          yield* engine.drain
          yield* TestClock.adjust("1 second")
          yield* engine.await(Traced, id)
          assert.deepStrictEqual(yield* Ref.get(seen), [
            { name: "effect-tasks.attempt traced", id, attempt: 1 },
            { name: "effect-tasks.attempt traced", id, attempt: 2 }
          ])
        }), { tracing: true })
    }))

  it.effect("over a shared store, settlements are written behind: the worker runs its next task while one travels", () =>
    Effect.gen(function*() {
      // a store that says it is shared and settles in batches (as a SQL store does), and holds
      // back settlements until `open`
      const open = yield* Deferred.make<void>()
      const batches = yield* Ref.make<ReadonlyArray<number>>([])
      const GatedStore = Layer.effect(
        TaskStore.TaskStore,
        Effect.map(TaskStore.TaskStore, (store): TaskStore.TaskStore => ({
          ...store,
          shared: true,
          settle: (...args) => Effect.zipRight(Deferred.await(open), store.settle(...args)),
          settleMany: (owner, settlements) =>
            Effect.zipRight(
              Effect.zipRight(Deferred.await(open), Ref.update(batches, (all) => [...all, settlements.length])),
              Effect.forEach(settlements, ([id, settlement]) => store.settle(id, owner, settlement))
            )
        }))
      ).pipe(Layer.provide(TaskStore.layerMemory))
      const started = yield* Ref.make<ReadonlyArray<string>>([])
      const Log = Echo.toLayer(({ text }) => Effect.as(Ref.update(started, (all) => [...all, text]), text))
      const layer = Log.pipe(Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 1, cleanup: false })), Layer.provide(GatedStore))
      yield* Effect.gen(function*() {
        const engine = yield* TaskEngine.TaskEngine
        const a = yield* engine.submit(Echo, { text: "a" })
        yield* engine.submit(Echo, { text: "b" })
        yield* engine.submit(Echo, { text: "c" })
        yield* TestClock.adjust(0)
        // one worker, and no settlement has landed: yet every task has run
        assert.deepStrictEqual(yield* Ref.get(started), ["a", "b", "c"])
        assert.strictEqual((yield* record(engine, a)).status, "processing")
        // the attempts are over: the metrics say so already (never more running than workers)
        const before = (yield* engine.metrics).tasks["echo"]
        assert.strictEqual(before?.completed, 3)
        assert.strictEqual(before?.running, 0)
        // drain and a cancel wait for the settlements; the cancel finds a finished task
        const drained = yield* Effect.fork(engine.drain)
        const cancelled = yield* Effect.fork(engine.cancel(a))
        yield* TestClock.adjust(0)
        assert.isNull(drained.unsafePoll())
        assert.isNull(cancelled.unsafePoll())
        yield* Deferred.succeed(open, undefined)
        yield* Fiber.join(drained)
        assert.isFalse(yield* Fiber.join(cancelled))
        assert.strictEqual(yield* engine.await(Echo, a), "a")
        assert.strictEqual((yield* engine.metrics).tasks["echo"]?.completed, 3)
        // every settlement went through settleMany, gathered into one batch
        assert.deepStrictEqual(yield* Ref.get(batches), [3])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("settlements written behind are bounded: past the bound a worker waits for its own to land", () =>
    Effect.gen(function*() {
      const open = yield* Deferred.make<void>()
      const GatedStore = Layer.effect(
        TaskStore.TaskStore,
        Effect.map(TaskStore.TaskStore, (store): TaskStore.TaskStore => ({
          ...store,
          shared: true,
          settle: (...args) => Effect.zipRight(Deferred.await(open), store.settle(...args)),
          settleMany: (owner, settlements) =>
            Effect.zipRight(
              Deferred.await(open),
              Effect.forEach(settlements, ([id, settlement]) => store.settle(id, owner, settlement))
            )
        }))
      ).pipe(Layer.provide(TaskStore.layerMemory))
      const started = yield* Ref.make(0)
      const Log = Echo.toLayer(({ text }) => Effect.as(Ref.update(started, (n) => n + 1), text))
      const layer = Log.pipe(Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 1, cleanup: false })), Layer.provide(GatedStore))
      const bound = maxBehindOf(1)
      yield* Effect.gen(function*() {
        const engine = yield* TaskEngine.TaskEngine
        yield* engine.submitMany(Echo, Array.from({ length: bound + 5 }, (_, i) => ({ text: `t${i}` })))
        yield* TestClock.adjust(0)
        // the bound left behind, then one more whose settlement the worker waits for itself
        assert.strictEqual(yield* Ref.get(started), bound + 1)
        yield* Deferred.succeed(open, undefined)
        yield* engine.drain
        assert.strictEqual(yield* Ref.get(started), bound + 5)
        assert.strictEqual((yield* engine.metrics).tasks["echo"]?.completed, bound + 5)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("once the workers are idle, the settlements waiting are written at once, beside a write in flight", () =>
    Effect.gen(function*() {
      // every settleMany is held until `open`, and says how many it carries when it starts
      const open = yield* Deferred.make<void>()
      const batches = yield* Ref.make<ReadonlyArray<number>>([])
      const GatedStore = Layer.effect(
        TaskStore.TaskStore,
        Effect.map(TaskStore.TaskStore, (store): TaskStore.TaskStore => ({
          ...store,
          shared: true,
          // not the memory store's own settle, so the engine does not settle in place
          settle: (...args) => store.settle(...args),
          settleMany: (owner, settlements) =>
            Effect.zipRight(
              Effect.zipRight(Ref.update(batches, (all) => [...all, settlements.length]), Deferred.await(open)),
              Effect.forEach(settlements, ([id, settlement]) => store.settle(id, owner, settlement))
            )
        }))
      ).pipe(Layer.provide(TaskStore.layerMemory))
      // the first task finishes at once, the others once `go`
      const go = yield* Deferred.make<void>()
      const layer = Echo.toLayer(({ text }) => text === "t0" ? Effect.succeed(text) : Effect.as(Deferred.await(go), text))
        .pipe(
          Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 2, cleanup: false })),
          Layer.provide(GatedStore)
        )
      yield* Effect.gen(function*() {
        const engine = yield* TaskEngine.TaskEngine
        yield* engine.submitMany(Echo, Array.from({ length: 20 }, (_, i) => ({ text: `t${i}` })))
        yield* TestClock.adjust(0)
        // the first settlement went out alone
        assert.deepStrictEqual(yield* Ref.get(batches), [1])
        yield* Deferred.succeed(go, undefined)
        yield* TestClock.adjust(0)
        // the other 19, far fewer than a full statement, went out as soon as the workers found
        // nothing more to run, the first still in flight
        assert.deepStrictEqual(yield* Ref.get(batches), [1, 19])
        yield* Deferred.succeed(open, undefined)
        yield* engine.drain
        assert.strictEqual((yield* engine.metrics).tasks["echo"]?.completed, 20)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("wake-ups through onWakeup wake the idle workers; an engine listens only once it has a handler", () =>
    Effect.gen(function*() {
      // a store whose wake-ups are callbacks (as the Postgres store's), and work that arrives in
      // it without this engine's submit (as from another instance)
      const wakes = new Set<() => void>()
      const WakingStore = Layer.effect(
        TaskStore.TaskStore,
        Effect.map(TaskStore.TaskStore, (store): TaskStore.TaskStore => ({
          ...store,
          shared: true,
          onWakeup: (wake) =>
            Effect.acquireRelease(Effect.sync(() => wakes.add(wake)), () => Effect.sync(() => wakes.delete(wake)))
        }))
      ).pipe(Layer.provide(TaskStore.layerMemory))
      const started = yield* Ref.make<ReadonlyArray<string>>([])
      const Log = Echo.toLayer(({ text }) => Effect.as(Ref.update(started, (all) => [...all, text]), text))
      const engineLayer = TaskEngine.layer({ maxConcurrent: 2, cleanup: false, pollInterval: "1 hour" })
      yield* Effect.gen(function*() {
        // a producer: no handler, so no subscription
        yield* TaskEngine.TaskEngine
        yield* TestClock.adjust(0)
        assert.strictEqual(wakes.size, 0)
        yield* Effect.gen(function*() {
          yield* TestClock.adjust(0)
          assert.strictEqual(wakes.size, 1)
          const store = yield* TaskStore.TaskStore
          const now = new Date(yield* Clock.currentTimeMillis)
          const inserted = (text: string) => ({
            id: text as TaskId,
            name: Echo.name,
            payload: { text },
            priority: 0,
            runAt: now,
            idempotencyKey: null
          })
          yield* store.insert([inserted("x"), inserted("y")])
          yield* TestClock.adjust(0)
          // parked, and no poll for an hour: only the wake-up starts them
          assert.deepStrictEqual(yield* Ref.get(started), [])
          for (const wake of wakes) wake()
          yield* TestClock.adjust(0)
          assert.deepStrictEqual([...(yield* Ref.get(started))].sort(), ["x", "y"])
        }).pipe(Effect.provide(Log))
      }).pipe(Effect.provide(engineLayer.pipe(Layer.provideMerge(WakingStore))))
    }))

  it.effect("await of an unknown id fails with TaskNotFound", () =>
    withEngine(EchoLive, (engine) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(engine.await(Echo, "missing"))
        assert.instanceOf(error, TaskError.TaskNotFound)
      })))
})
