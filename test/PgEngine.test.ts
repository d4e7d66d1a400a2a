/**
 * The engine end to end on PostgreSQL, in real time: several engine instances (each with its own
 * store, as separate processes would have) share one queue in a schema of their own. Leases,
 * heartbeats and polls are short so that each test takes a second or two.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Layer, Option, Queue, Redacted, Ref, Schedule, Schema, Scope, Stream } from "effect"
import { EdgeRuntime, ErrorReporter, Task, TaskEngine, TaskMetrics } from "../src/index.js"
import * as PgTaskStore from "../src/layers/PgTaskStore.js"
import { TaskCancelled } from "../src/services/TaskError.js"
import type { TaskId } from "../src/services/TaskRecord.js"
import { TaskStore } from "../src/services/TaskStore.js"
import { freshSchema, PgClientLive } from "./support/Database.js"

const fast: TaskEngine.Options = {
  maxConcurrent: 4,
  pollInterval: "100 millis",
  heartbeatInterval: "100 millis",
  leaseDuration: "1 second",
  shutdownTimeout: "1 second",
  cleanup: false
}

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { attempt: Schema.Number }) {}

const Double = Task.make("double", {
  payload: Schema.Struct({ n: Schema.Int }),
  success: Schema.Struct({ doubled: Schema.Int })
})

const FailsFirst = Task.make("fails-first", {
  payload: Schema.Struct({ n: Schema.Int }),
  success: Schema.Struct({ attempt: Schema.Int }),
  failure: Flaky,
  retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(3)))
})

const Sleepy = Task.make("sleepy", { payload: Schema.Struct({ n: Schema.Int }) })

class Refused extends Schema.TaggedError<Refused>()("Refused", { why: Schema.String }) {}

const Login = Task.make("login", {
  payload: Schema.Struct({ user: Schema.String, password: Schema.Redacted(Schema.String) }),
  failure: Refused,
  retry: Schedule.stop
})

/** An engine with these handlers on its own store in `schema`, living as long as `scope`. */
const engineIn = (
  schema: string,
  handlers: Layer.Layer<never, never, TaskEngine.TaskEngine>,
  options: TaskEngine.Options = {},
  storeOptions: PgTaskStore.PgTaskStoreOptions = {}
): Effect.Effect<TaskEngine.TaskEngine, unknown, PgClient.PgClient | Scope.Scope> =>
  Effect.map(
    Layer.build(handlers.pipe(
      Layer.provideMerge(TaskEngine.layer({ ...fast, ...options })),
      Layer.provide(PgTaskStore.layerPostgres({ schema, ...storeOptions }))
    )),
    Context.get(TaskEngine.TaskEngine)
  )

const doubleLive = Double.toLayer(({ n }) => Effect.succeed({ doubled: n * 2 }))

const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, ok: (a: A) => boolean) =>
  effect.pipe(
    Effect.filterOrFail(ok),
    Effect.retry(Schedule.spaced("25 millis")),
    Effect.timeout("10 seconds")
  )

layer(PgClientLive, { excludeTestServices: true })("TaskEngine on PostgreSQL", (it) => {
  it.scoped("submit, await and get: the task is stored, run and completed with its result", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("engine")
      const engine = yield* engineIn(schema, doubleLive)
      const id = yield* engine.submit(Double, { n: 21 })
      assert.deepStrictEqual(yield* engine.await(Double, id), { doubled: 42 })
      const record = Option.getOrThrow(yield* engine.get(id))
      assert.strictEqual(record.status, "completed")
      assert.strictEqual(record.attempt, 1)
      assert.strictEqual(record.progress, 100)
      const rows = yield* sql<{ status: string; result: unknown }>`
        SELECT status, result FROM ${sql(schema)}.task_status WHERE id = ${id}`
      assert.deepStrictEqual(rows, [{ status: "completed", result: { doubled: 42 } }])
    }))

  it.scoped("a retry's backoff is persisted as run_at: stopped during it, another instance finishes the task", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("backoff")
      const handlers = FailsFirst.toLayer((_, task) =>
        task.attempt === 1 ? Effect.fail(new Flaky({ attempt: task.attempt })) : Effect.succeed({ attempt: task.attempt })
      )
      const first = yield* Scope.make()
      const a = yield* Scope.extend(engineIn(schema, handlers, { instanceId: "first" }), first)
      const id = yield* a.submit(FailsFirst, { n: 1 })
      const waiting = yield* eventually(
        Effect.map(a.get(id), Option.getOrThrow),
        (record) => record.status === "pending" && record.attempt === 1
      )
      assert.strictEqual(waiting.error?.tag, "Flaky")
      // the backoff (1 s) counts from the failure, which came after the claim
      assert.isAtLeast(waiting.runAt.getTime() - waiting.startedAt!.getTime(), 1_000)
      yield* Scope.close(first, Exit.void)
      const b = yield* engineIn(schema, handlers, { instanceId: "second" })
      assert.deepStrictEqual(yield* b.await(FailsFirst, id), { attempt: 2 })
      const done = Option.getOrThrow(yield* b.get(id))
      assert.strictEqual(done.status, "completed")
      assert.strictEqual(done.attempt, 2)
      assert.isAtLeast(done.startedAt!.getTime(), waiting.runAt.getTime())
    }))

  it.scoped("cancel from another instance interrupts the running attempt there, through its heartbeat", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("cancel")
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const runner = Sleepy.toLayer(() =>
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
        )
      )
      yield* engineIn(schema, runner, { instanceId: "runner" })
      const producer = yield* engineIn(schema, Layer.empty, { instanceId: "producer", definitions: [Sleepy] })
      const id = yield* producer.submit(Sleepy, { n: 1 })
      yield* Deferred.await(started).pipe(Effect.timeout("10 seconds"))
      assert.isTrue(yield* producer.cancel(id))
      yield* Deferred.await(interrupted).pipe(Effect.timeout("5 seconds"))
      const outcome = yield* Effect.flip(producer.await(Sleepy, id)).pipe(Effect.timeout("5 seconds"))
      assert.instanceOf(outcome, TaskCancelled)
      const record = Option.getOrThrow(yield* producer.get(id))
      assert.strictEqual(record.status, "cancelled")
      assert.strictEqual(record.lockedBy, null)
      assert.isFalse(yield* producer.cancel(id))
    }))

  it.scoped.each([0, 16])("two instances share one queue and run every task exactly once (prefetch %i)", (prefetch) =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("shared")
      const runs = yield* Ref.make(new Map<string, Array<string>>())
      const counting = (instance: string) =>
        Double.toLayer(({ n }, task) =>
          Effect.as(
            Ref.update(runs, (map) => new Map(map).set(task.id, [...(map.get(task.id) ?? []), instance])),
            { doubled: n * 2 }
          )
        )
      // leases long enough that no task runs twice on a busy machine: this is about sharing
      const a = yield* engineIn(schema, counting("a"), { instanceId: "a", leaseDuration: "30 seconds" }, { prefetch })
      yield* engineIn(schema, counting("b"), { instanceId: "b", leaseDuration: "30 seconds" }, { prefetch })
      const ids = yield* a.submitMany(Double, Array.from({ length: 200 }, (_, n) => ({ n })))
      yield* eventually(a.list({ status: "completed" }), (records) => records.length === 200)
      const records = yield* a.list({})
      assert.isTrue(records.every((record) => record.attempt === 1))
      const map = yield* Ref.get(runs)
      assert.strictEqual(map.size, 200)
      assert.isTrue(ids.every((id) => map.get(id)?.length === 1))
    }))

  it.scoped("with prefetch the engine takes tasks claimed ahead at once, but a store wrapper that replaces claim sees every claim", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("ahead")
      const claims = yield* Ref.make(0)
      const store = Context.get(
        yield* Layer.build(PgTaskStore.layerPostgres({ schema, prefetch: 50, listen: false })),
        TaskStore
      )
      const run = (over: TaskStore, count: number) =>
        Effect.gen(function*() {
          const engine = Context.get(
            yield* Layer.build(doubleLive.pipe(
              Layer.provideMerge(TaskEngine.layer(fast)),
              Layer.provide(Layer.succeed(TaskStore, over))
            )),
            TaskEngine.TaskEngine
          )
          const ids = yield* engine.submitMany(Double, Array.from({ length: count }, (_, n) => ({ n })))
          for (const id of ids) assert.deepStrictEqual(yield* engine.await(Double, id), { doubled: ids.indexOf(id) * 2 })
        }).pipe(Effect.scoped)
      // the store itself: tasks come from its buffer, without a call of claim
      yield* run(store, 100)
      // a wrapper that replaces claim (and keeps the store's ahead by spreading): not bypassed
      const counted: TaskStore = {
        ...store,
        claim: (options) => Effect.zipRight(Ref.update(claims, (n) => n + 1), store.claim(options))
      }
      yield* run(counted, 100)
      assert.isAtLeast(yield* Ref.get(claims), 100)
    }))

  it.scoped("an idle instance is woken by LISTEN/NOTIFY, long before its next poll", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("listen")
      // join the process's listener of the channel first, and wait until it is live
      const live = yield* Queue.unbounded<void>()
      yield* Effect.forkScoped(
        Stream.runForEach(PgTaskStore.wakeups(sql, `${schema}.task_status`), () => Queue.offer(live, undefined))
      )
      const started = yield* Deferred.make<number>()
      const worker = Double.toLayer(({ n }) =>
        Effect.as(Effect.flatMap(Effect.sync(() => Date.now()), (at) => Deferred.succeed(started, at)), { doubled: n })
      )
      yield* engineIn(schema, worker, { instanceId: "idle", pollInterval: "1 minute" })
      yield* Queue.take(live).pipe(Effect.timeout("10 seconds"))
      const producer = yield* engineIn(schema, Layer.empty, { definitions: [Double] }, { listen: false })
      const submittedAt = Date.now()
      yield* producer.submit(Double, { n: 1 })
      const startedAt = yield* Deferred.await(started).pipe(Effect.timeout("5 seconds"))
      assert.isBelow(startedAt - submittedAt, 5_000)
    }))

  it.scoped("a burst from another instance keeps every idle worker busy, with and without prefetch", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      for (const prefetch of [0, 10]) {
        const schema = yield* freshSchema("burst")
        const live = yield* Queue.unbounded<void>()
        yield* Effect.forkScoped(
          Stream.runForEach(PgTaskStore.wakeups(sql, `${schema}.task_status`), () => Queue.offer(live, undefined))
        )
        let running = 0
        let peak = 0
        const worker = Sleepy.toLayer(() =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              running++
              peak = Math.max(peak, running)
            }),
            () => Effect.sleep("400 millis"),
            () => Effect.sync(() => running--)
          )
        )
        // no poll for a minute: only the wake-up and the workers' own wake-ups can start them
        const engine = yield* engineIn(schema, worker, { instanceId: "idle", pollInterval: "1 minute" }, { prefetch })
        yield* Queue.take(live).pipe(Effect.timeout("10 seconds"))
        const producer = yield* engineIn(schema, Layer.empty, { definitions: [Sleepy] }, { listen: false })
        yield* producer.submitMany(Sleepy, Array.from({ length: 8 }, (_, n) => ({ n })))
        yield* eventually(engine.list({ status: "completed" }), (done) => done.length === 8)
        assert.strictEqual(peak, fast.maxConcurrent, `prefetch ${prefetch}`)
      }
    }))

  it.scoped("a task whose instance died runs again once its lease expires", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("lease")
      const engine = yield* engineIn(schema, Layer.empty, { definitions: [Double] })
      const id = yield* engine.submit(Double, { n: 5 })
      // an instance that claims the task and then dies: nobody extends its lease
      const dead = yield* Effect.map(Layer.build(PgTaskStore.layerPostgres({ schema, listen: false })), Context.get(TaskStore))
      const [claimed] = yield* dead.claim({ names: ["double"], limit: 1, owner: "dead", leaseMillis: 500 })
      assert.strictEqual(claimed?.id, id)
      const survivor = yield* engineIn(schema, doubleLive, { instanceId: "survivor" })
      assert.deepStrictEqual(yield* survivor.await(Double, id), { doubled: 10 })
      const record = Option.getOrThrow(yield* survivor.get(id as TaskId))
      assert.strictEqual(record.attempt, 2)
      assert.isAtLeast(record.startedAt!.getTime(), claimed!.lockedUntil!.getTime())
    }))

  it.scoped("a final failure is a row of error_logs, with the redacted payload", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("errors")
      const handlers = Login.toLayer(({ user }) => Effect.fail(new Refused({ why: `no such user ${user}` })))
      const context = yield* Layer.build(handlers.pipe(
        Layer.provideMerge(TaskEngine.layer(fast)),
        Layer.provide(Layer.mergeAll(
          PgTaskStore.layerPostgres({ schema }),
          ErrorReporter.layerSql({ schema })
        ))
      ))
      const engine = Context.get(context, TaskEngine.TaskEngine)
      const id = yield* engine.submit(Login, { user: "ann", password: Redacted.make("hunter2") })
      const failure = yield* Effect.flip(engine.await(Login, id))
      assert.instanceOf(failure, Refused)
      // the report is written after the settlement that resolves awaiters
      const rows = yield* eventually(
        sql<{ task_id: string; error: string; context: Record<string, unknown> }>`
          SELECT task_id, error, context FROM ${sql(schema)}.error_logs`,
        (rows) => rows.length > 0
      )
      assert.strictEqual(rows.length, 1)
      assert.strictEqual(rows[0]!.task_id, id)
      assert.match(rows[0]!.error, /no such user ann/)
      assert.deepStrictEqual(rows[0]!.context.payload, { user: "ann", password: "<redacted>" })
      assert.strictEqual(rows[0]!.context.final, true)
      assert.strictEqual(rows[0]!.context.tag, "Refused")
      assert.notInclude(JSON.stringify(rows), "hunter2")
      const reporter = yield* ErrorReporter.makeSql({ schema, migrate: false })
      const reports = yield* reporter.reports
      assert.deepStrictEqual(reports.map((r) => [r.taskId, r.context.final]), [[id, true]])
    }))

  it.scoped("metrics are written to task_metrics every flushInterval, and once more when the engine stops", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("metrics")
      const scope = yield* Scope.make()
      const engine = yield* Scope.extend(
        Effect.map(
          Layer.build(doubleLive.pipe(
            Layer.provideMerge(TaskEngine.layer(fast)),
            Layer.provide(Layer.mergeAll(
              PgTaskStore.layerPostgres({ schema }),
              TaskMetrics.layerSql({ schema, flushInterval: "100 millis", instanceId: "m1" })
            ))
          )),
          Context.get(TaskEngine.TaskEngine)
        ),
        scope
      )
      const completed = sql<{ completed: string }>`
        SELECT completed FROM ${sql(schema)}.task_metrics WHERE instance_id = 'm1' AND task_name = 'double'`
      const ids = yield* engine.submitMany(Double, [{ n: 1 }, { n: 2 }, { n: 3 }])
      yield* Effect.forEach(ids, (id) => engine.await(Double, id))
      yield* eventually(completed, (rows) => Number(rows[0]?.completed) === 3)
      const last = yield* engine.submit(Double, { n: 4 })
      yield* engine.await(Double, last)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(Number((yield* completed)[0]?.completed), 4)
      const total = yield* sql<{ completed: string; submitted: string }>`
        SELECT completed, submitted FROM ${sql(schema)}.task_metrics WHERE instance_id = 'm1' AND task_name = '*'`
      assert.deepStrictEqual(total.map((r) => [Number(r.completed), Number(r.submitted)]), [[4, 4]])
    }))

  it.scoped("an edge runtime shutting down hands its running task back to PostgreSQL; another instance finishes it", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("edge")
      const started = yield* Deferred.make<void>()
      const edge = yield* Scope.make()
      const engine = yield* Layer.buildWithScope(
        Sleepy.toLayer(() => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)).pipe(
          Layer.provideMerge(EdgeRuntime.layer({ ...fast, shutdownTimeout: "200 millis" })),
          Layer.provide(PgTaskStore.layerPostgres({ schema }))
        ),
        edge
      ).pipe(Effect.map(Context.get(TaskEngine.TaskEngine)))
      const id = yield* engine.submit(Sleepy, { n: 1 })
      yield* Deferred.await(started)
      // what `beforeunload` does: close the runtime that holds the engine
      yield* Scope.close(edge, Exit.void)
      const other = yield* engineIn(schema, Sleepy.toLayer(() => Effect.void))
      const record = yield* eventually(other.get(id), (r) => Option.isSome(r) && r.value.status === "completed")
      assert.strictEqual(Option.getOrThrow(record).attempt, 2)
    }))
})
