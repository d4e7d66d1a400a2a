import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Logger, Option, Schedule, Schema, Scope } from "effect"
import { EdgeRuntime, Progress, Task, TaskEngine, TaskStore, WaitUntil, WebHandler } from "../src/index.js"

const Forever = Task.make("forever", { payload: Schema.Struct({ n: Schema.Int }), retry: Schedule.stop })
const ForeverLive = Forever.toLayer(() => Effect.zipRight(Progress.set(25), Effect.never))
const Quick = Task.make("quick", { success: Schema.String, retry: Schedule.stop })
const QuickLive = Quick.toLayer(() => Effect.succeed("done"))

/** Collects log lines ("LEVEL message") for the effect it wraps. */
const capturing = <A, E, R>(lines: Array<string>, effect: Effect.Effect<A, E, R>) =>
  Effect.provide(
    effect,
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })
    )
  )

/** A memory store that says it is shared, as a durable store does. */
const sharedMemoryStore = Layer.effect(
  TaskStore.TaskStore,
  Effect.map(TaskStore.TaskStore, (store) => ({ ...store, shared: true }))
).pipe(Layer.provide(TaskStore.layerMemory))

/** Builds the edge engine in a scope of its own, runs `body`, then closes the scope. */
const lifetime = <A, E>(
  store: Layer.Layer<TaskStore.TaskStore>,
  body: (engine: TaskEngine.TaskEngine, store: TaskStore.TaskStore) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const layer = Layer.mergeAll(ForeverLive, QuickLive).pipe(
      Layer.provideMerge(EdgeRuntime.layer({ shutdownTimeout: "30 millis", pollInterval: "50 millis" })),
      Layer.provideMerge(store)
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    const engine = yield* Effect.provide(TaskEngine.TaskEngine, context)
    const taskStore = yield* Effect.provide(TaskStore.TaskStore, context)
    const result = yield* body(engine, taskStore)
    yield* Scope.close(scope, Exit.void)
    return { result, store: taskStore }
  })

/** Polls (bounded) until the task runs and has reported its 25 %. */
const waitUntilRunning = (engine: TaskEngine.TaskEngine, id: string) =>
  engine.get(id).pipe(
    Effect.map(Option.getOrThrow),
    Effect.filterOrFail((r) => r.status === "processing" && r.progress === 25, () => "not running yet"),
    Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(400)))),
    Effect.orDie
  )

describe("EdgeRuntime.layer", () => {
  it.live("over a memory store, shutdown logs exactly which unfinished tasks are dropped", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      let ids: ReadonlyArray<string> = []
      yield* capturing(
        lines,
        lifetime(TaskStore.layerMemory, (engine) =>
          Effect.gen(function*() {
            const running = yield* engine.submit(Forever, { n: 1 })
            const waiting = yield* engine.submit(Forever, { n: 2 }, { delay: "1 hour" })
            const done = yield* engine.submit(Quick, undefined)
            yield* engine.await(Quick, done)
            yield* waitUntilRunning(engine, running)
            ids = [running, waiting]
          }))
      )
      const dropped = lines.filter((l) => l.includes("dropping"))
      assert.strictEqual(dropped.length, 1, lines.join("\n"))
      assert.match(dropped[0]!, /^WARN shutdown: the memory store is not durable; dropping 2 unfinished task\(s\)/)
      for (const id of ids) assert.include(dropped[0]!, id)
      assert.include(dropped[0]!, `${ids[0]} (forever, pending, attempt 1, 25%)`)
      assert.strictEqual(dropped[0]!.split("(quick").length, 1)
    }))

  it.live("over a memory store with nothing unfinished, shutdown says that nothing is dropped", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      yield* capturing(
        lines,
        lifetime(TaskStore.layerMemory, (engine) => Effect.flatMap(engine.submit(Quick, undefined), (id) => engine.await(Quick, id)))
      )
      assert.isTrue(lines.includes("INFO shutdown: every task had finished; the memory store drops nothing"), lines.join("\n"))
    }))

  it.live("over a shared store, shutdown releases running tasks to pending and names them", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      let id = ""
      const { store } = yield* capturing(
        lines,
        lifetime(sharedMemoryStore, (engine) =>
          Effect.gen(function*() {
            id = yield* engine.submit(Forever, { n: 1 })
            yield* waitUntilRunning(engine, id)
          }))
      )
      const record = Option.getOrThrow(yield* store.get(id as never))
      assert.strictEqual(record.status, "pending")
      assert.strictEqual(record.attempt, 1)
      assert.isNull(record.lockedBy)
      const handedBack = lines.filter((l) => l.includes("handed"))
      assert.strictEqual(handedBack.length, 1, lines.join("\n"))
      assert.include(handedBack[0]!, `handed 1 unfinished task(s) back to the store for another instance: ${id}`)
    }))
})

describe("WaitUntil", () => {
  it.live("runs the effect detached and registers a promise that settles when it ends", () =>
    Effect.gen(function*() {
      const promises: Array<Promise<unknown>> = []
      const waitUntil = WaitUntil.fromContext({ waitUntil: (p) => void promises.push(p) })
      const gate = yield* Deferred.make<void>()
      const ran = yield* Deferred.make<string>()
      let settled = false
      yield* waitUntil.waitUntil(Effect.zipRight(Deferred.await(gate), Deferred.succeed(ran, "ran")))
      assert.strictEqual(promises.length, 1)
      promises[0]!.then(() => {
        settled = true
      })
      yield* Effect.sleep("10 millis")
      assert.isFalse(settled)
      yield* Deferred.succeed(gate, undefined)
      yield* Effect.promise(() => promises[0]!)
      assert.strictEqual(yield* Deferred.await(ran), "ran")
    }))

  it.live("logs a failing background effect and still settles its promise", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const promises: Array<Promise<unknown>> = []
      yield* capturing(
        lines,
        WaitUntil.fromContext({ waitUntil: (p) => void promises.push(p) }).waitUntil(Effect.fail("disk full"))
      )
      yield* Effect.promise(() => promises[0]!)
      assert.isTrue(lines.some((l) => l.startsWith("ERROR background work failed")), lines.join("\n"))
    }))

  it.live("still runs the work when the platform refuses to register it, and says so", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const ran = yield* Deferred.make<void>()
      yield* capturing(
        lines,
        WaitUntil.make(() => {
          throw new Error("isolate is shutting down")
        }).waitUntil(Deferred.succeed(ran, undefined))
      )
      yield* Deferred.await(ran)
      assert.isTrue(lines.some((l) => l.startsWith("WARN waitUntil refused")), lines.join("\n"))
    }))

  it.live("layerSupabase uses the global EdgeRuntime.waitUntil, and warns where there is none", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      yield* capturing(lines, Effect.provide(WaitUntil.WaitUntil, WaitUntil.layerSupabase))
      assert.isTrue(lines.some((l) => l.includes("EdgeRuntime.waitUntil is not available")), lines.join("\n"))
      const promises: Array<Promise<unknown>> = []
      const global = globalThis as { EdgeRuntime?: unknown }
      global.EdgeRuntime = { waitUntil: (p: Promise<unknown>) => void promises.push(p) }
      try {
        const service = yield* Effect.provide(WaitUntil.WaitUntil, WaitUntil.layerSupabase)
        yield* service.waitUntil(Effect.void)
        yield* Effect.promise(() => promises[0]!)
        assert.strictEqual(promises.length, 1)
      } finally {
        delete global.EdgeRuntime
      }
    }))
})

describe("beforeunload", () => {
  it.live("disposes the web handler's runtime once, and the engine accounts for its tasks", () =>
    Effect.gen(function*() {
      const target = new EventTarget()
      const global = globalThis as {
        addEventListener?: unknown
        removeEventListener?: unknown
      }
      assert.isUndefined(global.addEventListener)
      global.addEventListener = target.addEventListener.bind(target)
      global.removeEventListener = target.removeEventListener.bind(target)
      const lines: Array<string> = []
      try {
        const app = QuickLive.pipe(
          Layer.provideMerge(EdgeRuntime.layer({ shutdownTimeout: "20 millis" })),
          Layer.provide(TaskStore.layerMemory),
          Layer.provide(
            Logger.replace(
              Logger.defaultLogger,
              Logger.make(({ logLevel, message }) => lines.push(`${logLevel.label} ${String(message)}`))
            )
          )
        )
        const web = WebHandler.make(app)
        const reply = yield* Effect.promise(() => web.handler(new Request("http://127.0.0.1/tasks")))
        assert.strictEqual(reply.status, 200)
        target.dispatchEvent(new Event("beforeunload"))
        target.dispatchEvent(new Event("beforeunload"))
        yield* Effect.sync(() => lines.length).pipe(
          Effect.filterOrFail((n) => n > 0, () => "no log yet"),
          Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(400)))),
          Effect.orDie
        )
        assert.deepStrictEqual(lines, ["INFO shutdown: every task had finished; the memory store drops nothing"])
      } finally {
        delete global.addEventListener
        delete global.removeEventListener
      }
    }))
})
