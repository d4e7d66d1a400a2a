/**
 * The change feed across instances on PostgreSQL: a producer and a worker, each on a `PgClient`
 * of its own (its own pool and LISTEN connection, as two processes would have), share a schema.
 * The producer's `subscribe`/`changes`/`watch` (hence SSE and the dashboard) see the worker's
 * claim, progress and settlement: by LISTEN on `<schema>.task_changes`, and by the poll backstop
 * when no notification comes.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, layer } from "@effect/vitest"
import { Chunk, Context, Effect, Exit, Fiber, Layer, Queue, Redacted, Schedule, Schema, Scope, Stream } from "effect"
import { Progress, Task, TaskEngine } from "../src/index.js"
import * as PgTaskStore from "../src/layers/PgTaskStore.js"
import type { TaskRecord } from "../src/services/TaskRecord.js"
import { databaseUrl, freshSchema, PgClientLive } from "./support/Database.js"

const fast: TaskEngine.Options = {
  maxConcurrent: 2,
  pollInterval: "100 millis",
  heartbeatInterval: "100 millis",
  leaseDuration: "2 seconds",
  shutdownTimeout: "1 second",
  cleanup: false
}

const Steps = Task.make("steps", {
  payload: Schema.Struct({ pause: Schema.Int }),
  success: Schema.Struct({ done: Schema.Boolean })
})

/** Reports 25, 50 and 75 with pauses between, then completes. */
const stepsLive = Steps.toLayer(({ pause }) =>
  Effect.gen(function*() {
    for (const percent of [25, 50, 75]) {
      yield* Progress.set(percent)
      yield* Effect.sleep(`${pause} millis`)
    }
    return { done: true }
  })
)

/** A client of its own: its own connections, as another process would have. */
const ownClient = (): Layer.Layer<PgClient.PgClient> =>
  Layer.orDie(PgClient.layer({ url: Redacted.make(databaseUrl()), maxConnections: 4 }))

/** An engine (with these handlers) on a store of its own, on a client of its own. */
const instance = (
  schema: string,
  handlers: Layer.Layer<never, never, TaskEngine.TaskEngine> | undefined,
  storeOptions: PgTaskStore.PgTaskStoreOptions = {}
): Effect.Effect<TaskEngine.TaskEngine, unknown, Scope.Scope> => {
  const engine = TaskEngine.layer(fast).pipe(
    Layer.provide(PgTaskStore.layerPostgres({ schema, progressInterval: "20 millis", ...storeOptions })),
    Layer.provide(ownClient())
  )
  const built = handlers === undefined ? engine : handlers.pipe(Layer.provideMerge(engine))
  return Effect.map(Layer.build(built), Context.get(TaskEngine.TaskEngine))
}

/** Every record a stream gives, into a queue, from now on. */
const collect = (stream: Stream.Stream<TaskRecord>) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<TaskRecord>()
    yield* Effect.forkScoped(Stream.runForEach(stream, (record) => Queue.offer(queue, record)))
    return queue
  })

const statuses = (records: Chunk.Chunk<TaskRecord>) => Chunk.toReadonlyArray(records).map((r) => r.status)

layer(PgClientLive, { excludeTestServices: true })("the change feed across instances (PostgreSQL)", (it) => {
  it.scoped("a producer's subscribe and watch see the worker's claim, progress and completion; watch ends", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("feed")
      // the producer listens to nothing but its feed; the backstop is far off, so LISTEN does it
      const producer = yield* instance(schema, undefined, { changePollInterval: "1 minute" })
      const worker = yield* instance(schema, stepsLive)
      const changes = yield* collect(yield* producer.subscribe)
      const id = yield* producer.submit(Steps, { pause: 150 })
      const watched = yield* producer.watch(id).pipe(Stream.runCollect, Effect.timeout("15 seconds"), Effect.fork)
      const records = yield* Fiber.join(watched)
      const seen = Chunk.toReadonlyArray(records)
      assert.strictEqual(seen[0]!.id, id)
      assert.strictEqual(seen[seen.length - 1]!.status, "completed")
      assert.deepStrictEqual(seen[seen.length - 1]!.result, { done: true })
      assert.include(statuses(records), "processing")
      // the worker's progress, live (a read may skip a version that a later one replaced)
      const progress = seen.filter((r) => r.status === "processing").map((r) => r.progress)
      assert.isTrue(progress.some((p) => p > 0 && p < 100), JSON.stringify(progress))
      assert.deepStrictEqual(progress, [...progress].sort((a, b) => a - b))
      // the whole feed: the producer's own insert, then the worker's changes, each once
      const all = yield* Effect.map(Queue.takeAll(changes), (chunk) => Chunk.toReadonlyArray(chunk))
      assert.strictEqual(all[0]!.status, "pending")
      assert.strictEqual(all[all.length - 1]!.status, "completed")
      const versions = all.map((r) => `${r.updatedAt.getTime()} ${r.status} ${r.progress}`)
      assert.strictEqual(new Set(versions).size, versions.length, versions.join("\n"))
      void worker
    }), { timeout: 30_000 })

  it.scoped("without LISTEN the poll backstop brings the other instance's changes, and the store unregisters after", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("feed")
      const producer = yield* instance(schema, undefined, { listen: false, changePollInterval: "200 millis" })
      yield* instance(schema, stepsLive)
      const subscription = yield* Scope.make()
      const changes = yield* Scope.extend(Effect.flatMap(producer.subscribe, collect), subscription)
      const id = yield* producer.submit(Steps, { pause: 50 })
      const last = yield* Queue.take(changes).pipe(
        Effect.repeat({ until: (record) => record.id === id && record.status === "completed" }),
        Effect.timeout("15 seconds")
      )
      assert.deepStrictEqual(last.result, { done: true })
      const registered = sql<{ readonly n: number }>`
        SELECT count(*)::int AS n FROM ${sql(schema)}.task_feed_subscribers`
      assert.strictEqual((yield* registered)[0]!.n, 1)
      yield* Scope.close(subscription, Exit.void)
      yield* registered.pipe(Effect.repeat({ until: (rows) => rows[0]!.n === 0, schedule: Schedule.spaced("20 millis") }), Effect.timeout("5 seconds"))
    }), { timeout: 30_000 })
})
