/**
 * Settlements after a store outage longer than the lease: the engine retries a waiting
 * settlement as soon as the store answers any call (a claim, a poll, a heartbeat), rather than at
 * the end of its backoff (up to 5 s), and never runs again a task of its own that a claim took
 * back meanwhile. The store is the PostgreSQL store (where a task whose lease ran out stays held
 * until someone claims it) behind a wrapper that fails every call while "down", in real time.
 */
import { assert, layer } from "@effect/vitest"
import { Clock, Context, Deferred, Effect, Layer, Option, Ref, Schedule, Schema } from "effect"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import * as PgTaskStore from "../src/layers/PgTaskStore.js"
import { StoreUnavailable } from "../src/services/TaskError.js"
import { freshSchema, PgClientLive } from "./support/Database.js"

const Job = Task.make("job", { payload: Schema.Struct({ n: Schema.Int }) })

/** The store with every Effect call failing while `down.value`; no in-thread shortcuts. */
const faulty = (inner: TaskStore.TaskStore, down: { value: boolean }, settleMany: boolean): TaskStore.TaskStore => {
  const guard = <A>(operation: string, effect: Effect.Effect<A, StoreUnavailable>) =>
    Effect.suspend(() =>
      down.value ? Effect.fail(new StoreUnavailable({ operation, reason: "injected outage" })) : effect
    )
  return TaskStore.make({
    shared: true,
    insert: (tasks) => guard("insert", inner.insert(tasks)),
    get: (id) => guard("get", inner.get(id)),
    list: (filter) => guard("list", inner.list(filter)),
    claim: (options) => guard("claim", inner.claim(options)),
    heartbeat: (owner, ids, lease) => guard("heartbeat", inner.heartbeat(owner, ids, lease)),
    setProgress: (id, owner, progress) => guard("setProgress", inner.setProgress(id, owner, progress)),
    settle: (id, owner, settlement) => guard("settle", inner.settle(id, owner, settlement)),
    ...(settleMany ? { settleMany: (owner, settlements) => guard("settleMany", inner.settleMany!(owner, settlements)) } : {}),
    cancel: (id) => guard("cancel", inner.cancel(id)),
    requeue: (id) => guard("requeue", inner.requeue(id)),
    deleteFinishedBefore: (status, cutoff, limit) =>
      guard("deleteFinishedBefore", inner.deleteFinishedBefore(status, cutoff, limit)),
    nextRunAt: (names) => guard("nextRunAt", inner.nextRunAt(names)),
    pendingCount: guard("pendingCount", inner.pendingCount),
    subscribe: inner.subscribe,
    wakeups: inner.wakeups
  })
}

layer(PgClientLive, { excludeTestServices: true })("settlements after a store outage (PostgreSQL)", (it) => {
  it.scoped.each([
    ["written behind (settleMany)", true],
    ["settled by the worker", false]
  ] as const)("%s: land as soon as the store answers, and the finished task does not run again", ([, many]) =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("outage")
      const inner = yield* Effect.map(
        Layer.build(PgTaskStore.layerPostgres({ schema, listen: false })),
        Context.get(TaskStore.TaskStore)
      )
      const down = { value: false }
      const runs = yield* Ref.make(0)
      const finish = yield* Deferred.make<void>()
      const JobLive = Job.toLayer(() => Effect.zipRight(Ref.update(runs, (n) => n + 1), Deferred.await(finish)))
      const engine = yield* Effect.map(
        Layer.build(JobLive.pipe(
          Layer.provideMerge(TaskEngine.layer({
            maxConcurrent: 1,
            pollInterval: "50 millis",
            heartbeatInterval: "100 millis",
            leaseDuration: "400 millis",
            shutdownTimeout: "1 second",
            cleanup: false
          })),
          Layer.provide(Layer.succeed(TaskStore.TaskStore, faulty(inner, down, many)))
        )),
        Context.get(TaskEngine.TaskEngine)
      )
      const id = yield* engine.submit(Job, { n: 1 })
      yield* Ref.get(runs).pipe(Effect.repeat({ until: (n) => n === 1, schedule: Schedule.spaced("10 millis") }))
      // the outage: the attempt ends meanwhile, its settlement fails and backs off (100 ms,
      // 200, 400, 800: the next try 1.6 s later), and its lease (400 ms) runs out
      down.value = true
      yield* Deferred.succeed(finish, undefined)
      yield* Effect.sleep("1700 millis")
      down.value = false
      const back = yield* Clock.currentTimeMillis
      const completed = Effect.map(inner.get(id), (record) => Option.getOrThrow(record).status === "completed")
      yield* completed.pipe(
        Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("10 millis") }),
        Effect.timeout("5 seconds")
      )
      const landed = (yield* Clock.currentTimeMillis) - back
      assert.isBelow(landed, 700, `the settlement landed ${landed} ms after the store came back`)
      yield* Effect.sleep("300 millis")
      assert.strictEqual(yield* Ref.get(runs), 1)
    }), { timeout: 20_000 })
})
