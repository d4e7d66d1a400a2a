/**
 * The `TaskStore` contract: one suite of the port's behaviour, run against every store layer
 * (`MemoryTaskStore.test.ts`, `PgTaskStore.test.ts`). Each test gets a fresh, empty store from the
 * layer, and runs in virtual time: a store must take its time from the Effect `Clock` here (the
 * Postgres store with `time: "clock"`), so `TestClock` drives delays and leases.
 */
import type { Vitest } from "@effect/vitest"
import { assert, describe } from "@effect/vitest"
import type { Layer, Scope } from "effect"
import { Chunk, Clock, Effect, Fiber, Option, Stream, TestClock } from "effect"
import type { NewTask, TaskErrorInfo, TaskId, TaskRecord } from "../src/services/TaskRecord.js"
import type { Settlement } from "../src/services/TaskStore.js"
import { TaskStore } from "../src/services/TaskStore.js"

const LEASE = 1_000
const A = "owner-a"
const B = "owner-b"

const id = (value: string): TaskId => value as TaskId

const newTask = (
  taskId: string,
  now: number,
  options: {
    readonly name?: string
    readonly payload?: unknown
    readonly priority?: number
    readonly delay?: number
    readonly idempotencyKey?: string
  } = {}
): NewTask => ({
  id: id(taskId),
  name: options.name ?? "n",
  payload: options.payload ?? { task: taskId },
  priority: options.priority ?? 0,
  runAt: new Date(now + (options.delay ?? 0)),
  idempotencyKey: options.idempotencyKey ?? null
})

const error = (message: string): TaskErrorInfo => ({ tag: "Boom", message, cause: `Error: ${message}` })

const now = Clock.currentTimeMillis

const store = TaskStore

const insertAt = (...tasks: ReadonlyArray<readonly [string, Parameters<typeof newTask>[2]?]>) =>
  Effect.gen(function*() {
    const t = yield* now
    const s = yield* store
    return yield* s.insert(tasks.map(([taskId, options]) => newTask(taskId, t, options)))
  })

const claim = (owner: string, limit: number, names: ReadonlyArray<string> = ["n"]) =>
  Effect.flatMap(store, (s) => s.claim({ names, limit, owner, leaseMillis: LEASE }))

const ids = (records: ReadonlyArray<TaskRecord>): ReadonlyArray<string> => records.map((record) => record.id)

const get = (taskId: string) =>
  Effect.flatMap(store, (s) => Effect.map(s.get(id(taskId)), Option.getOrThrowWith(() => new Error(`no ${taskId}`))))

const settle = (taskId: string, owner: string, settlement: Settlement) =>
  Effect.flatMap(store, (s) => s.settle(id(taskId), owner, settlement))

/**
 * Registers the contract's tests; `layer` must give a fresh, empty store each time it is built.
 */
/** What a store under test offers beyond the required port. */
export interface ContractOptions {
  /** The store implements `settleMany` (the SQL stores). */
  readonly settleMany?: boolean
}

export const taskStoreContract = <E, R>(
  it: Vitest.MethodsNonLive<R>,
  layer: Layer.Layer<TaskStore, E, R>,
  options: ContractOptions = {}
): void => {
  const test = (name: string, body: Effect.Effect<void, unknown, TaskStore | R | Scope.Scope>) =>
    it.effect(name, () => Effect.provide(Effect.scoped(body), layer))

  describe("TaskStore contract", () => {
    test(
      "insert stores a pending task with every field, and get returns it",
      Effect.gen(function*() {
        yield* TestClock.adjust(5_000)
        const t = yield* now
        const s = yield* store
        const results = yield* s.insert([newTask("a", t, { payload: { x: 1 }, priority: 2, delay: 10, idempotencyKey: "k" })])
        assert.deepStrictEqual(results, [{ id: id("a"), inserted: true }])
        const record = yield* get("a")
        assert.deepStrictEqual(record, {
          id: id("a"),
          name: "n",
          payload: { x: 1 },
          status: "pending",
          attempt: 0,
          progress: 0,
          result: null,
          error: null,
          priority: 2,
          runAt: new Date(t + 10),
          createdAt: new Date(t),
          startedAt: null,
          finishedAt: null,
          updatedAt: new Date(t),
          lockedBy: null,
          lockedUntil: null,
          idempotencyKey: "k"
        })
        assert.isTrue(Option.isNone(yield* s.get(id("missing"))))
      })
    )

    test(
      "insert answers in input order, with the existing id for a known idempotency key, within a batch too",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a", { idempotencyKey: "k1" }])
        const results = yield* insertAt(
          ["b", { idempotencyKey: "k1" }],
          ["c", { idempotencyKey: "k2" }],
          ["d", { idempotencyKey: "k2" }],
          ["e"]
        )
        assert.deepStrictEqual(results, [
          { id: id("a"), inserted: false },
          { id: id("c"), inserted: true },
          { id: id("c"), inserted: false },
          { id: id("e"), inserted: true }
        ])
        assert.isTrue(Option.isNone(yield* s.get(id("b"))))
        assert.isTrue(Option.isNone(yield* s.get(id("d"))))
        assert.strictEqual(yield* s.pendingCount, 3)
      })
    )

    test(
      "list gives records newest first, filtered by status and name, paged by cursor",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"], ["b", { name: "m" }], ["c"], ["d"])
        assert.deepStrictEqual(ids(yield* claim(A, 1)), ["a"])
        yield* settle("a", A, { _tag: "Completed", result: 1 })
        assert.deepStrictEqual(ids(yield* s.list({})), ["d", "c", "b", "a"])
        assert.deepStrictEqual(ids(yield* s.list({ status: "pending" })), ["d", "c", "b"])
        assert.deepStrictEqual(ids(yield* s.list({ status: ["completed", "pending"], name: "n" })), ["d", "c", "a"])
        assert.deepStrictEqual(ids(yield* s.list({ status: "failed" })), [])
        assert.deepStrictEqual(ids(yield* s.list({ limit: 2 })), ["d", "c"])
        assert.deepStrictEqual(ids(yield* s.list({ limit: 2, cursor: "c" })), ["b", "a"])
        assert.deepStrictEqual(ids(yield* s.list({ name: "n", cursor: "c" })), ["a"])
        assert.deepStrictEqual(ids(yield* s.list({ cursor: "a" })), [])
        assert.deepStrictEqual(ids(yield* s.list({ cursor: "unknown" })), [])
      })
    )

    test(
      "claim takes due tasks by priority then submission order, up to the limit, of the names asked for",
      Effect.gen(function*() {
        yield* TestClock.adjust(1_000)
        const t = yield* now
        yield* insertAt(["a"], ["b", { priority: 5 }], ["c"], ["d", { priority: 9, name: "other" }], ["e", { priority: 1 }])
        const first = yield* claim(A, 2)
        assert.deepStrictEqual(ids(first), ["b", "e"])
        for (const record of first) {
          assert.strictEqual(record.status, "processing")
          assert.strictEqual(record.attempt, 1)
          assert.strictEqual(record.lockedBy, A)
          assert.deepStrictEqual(record.lockedUntil, new Date(t + LEASE))
          assert.deepStrictEqual(record.startedAt, new Date(t))
        }
        assert.deepStrictEqual(ids(yield* claim(A, 10)), ["a", "c"])
        assert.deepStrictEqual(ids(yield* claim(A, 10)), [])
        assert.deepStrictEqual(ids(yield* claim(B, 10, ["other", "none"])), ["d"])
        assert.strictEqual((yield* get("b")).status, "processing")
      })
    )

    test(
      "priority ages: a task due one aging period (a minute) earlier outranks one priority level",
      Effect.gen(function*() {
        yield* insertAt(["old"])
        yield* TestClock.adjust("2 minutes")
        yield* insertAt(["high", { priority: 3 }], ["one", { priority: 1 }])
        // keys: old 0, one 120 s - 60 s = 60 s, high 120 s - 180 s = -60 s
        assert.deepStrictEqual(ids(yield* claim(A, 3)), ["high", "old", "one"])
      })
    )

    test(
      "a delayed task is not claimable before its runAt, and is from then on",
      Effect.gen(function*() {
        yield* insertAt(["a", { delay: 5_000 }])
        assert.deepStrictEqual(ids(yield* claim(A, 1)), [])
        yield* TestClock.adjust(4_999)
        assert.deepStrictEqual(ids(yield* claim(A, 1)), [])
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(ids(yield* claim(A, 1)), ["a"])
      })
    )

    test(
      "an expired lease lets another owner claim the task, attempt counted; the old owner has lost it",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"])
        assert.deepStrictEqual(ids(yield* claim(A, 1)), ["a"])
        assert.deepStrictEqual(ids(yield* claim(B, 1)), [])
        yield* TestClock.adjust(LEASE - 1)
        assert.deepStrictEqual(ids(yield* claim(B, 1)), [])
        yield* TestClock.adjust(1)
        const [taken] = yield* claim(B, 1)
        assert.strictEqual(taken?.id, "a")
        assert.strictEqual(taken?.attempt, 2)
        assert.strictEqual(taken?.lockedBy, B)
        assert.isTrue(Option.isNone(yield* settle("a", A, { _tag: "Completed", result: "late" })))
        assert.deepStrictEqual(yield* s.heartbeat(A, [id("a")], LEASE), { cancelled: [], lost: [id("a")] })
        const done = yield* settle("a", B, { _tag: "Completed", result: "ok" })
        assert.strictEqual(Option.getOrThrow(done).result, "ok")
      })
    )

    test(
      "heartbeats extend the owner's leases and report the tasks it does not hold",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"])
        yield* claim(A, 1)
        yield* TestClock.adjust(800)
        const t = yield* now
        assert.deepStrictEqual(yield* s.heartbeat(A, [id("a"), id("unknown")], LEASE), {
          cancelled: [],
          lost: [id("unknown")]
        })
        assert.deepStrictEqual((yield* get("a")).lockedUntil, new Date(t + LEASE))
        assert.deepStrictEqual(yield* s.heartbeat(B, [id("a")], LEASE), { cancelled: [], lost: [id("a")] })
        yield* TestClock.adjust(800)
        assert.deepStrictEqual(ids(yield* claim(B, 1)), [])
        yield* TestClock.adjust(200)
        assert.deepStrictEqual(ids(yield* claim(B, 1)), ["a"])
      })
    )

    test(
      "cancel of a processing task is requested, reported by the owner's heartbeat, then settled as cancelled",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"], ["b"])
        yield* claim(A, 2)
        assert.strictEqual(yield* s.cancel(id("a")), "requested")
        assert.strictEqual((yield* get("a")).status, "processing")
        assert.deepStrictEqual(yield* s.heartbeat(A, [id("a"), id("b")], LEASE), { cancelled: [id("a")], lost: [] })
        yield* TestClock.adjust(10)
        const t = yield* now
        const cancelled = Option.getOrThrow(yield* settle("a", A, { _tag: "Cancelled" }))
        assert.strictEqual(cancelled.status, "cancelled")
        assert.deepStrictEqual(cancelled.finishedAt, new Date(t))
        assert.isNull(cancelled.lockedBy)
        assert.strictEqual(yield* s.cancel(id("a")), "finished")
      })
    )

    test(
      "cancel withdraws a pending task at once; a finished one is left alone; an unknown id is not found",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"], ["b", { delay: 60_000 }])
        yield* TestClock.adjust(5)
        const t = yield* now
        assert.strictEqual(yield* s.cancel(id("a")), "cancelled")
        assert.strictEqual(yield* s.cancel(id("b")), "cancelled")
        const record = yield* get("a")
        assert.strictEqual(record.status, "cancelled")
        assert.deepStrictEqual(record.finishedAt, new Date(t))
        assert.strictEqual(yield* s.pendingCount, 0)
        yield* TestClock.adjust("2 minutes")
        assert.deepStrictEqual(ids(yield* claim(A, 10)), [])
        assert.strictEqual(yield* s.cancel(id("a")), "finished")
        assert.strictEqual(yield* s.cancel(id("nope")), "notFound")
      })
    )

    test(
      "settle Completed: completed with the result, progress 100, lease cleared",
      Effect.gen(function*() {
        yield* insertAt(["a"])
        yield* claim(A, 1)
        yield* TestClock.adjust(25)
        const t = yield* now
        const done = Option.getOrThrow(yield* settle("a", A, { _tag: "Completed", result: { path: "/x" } }))
        assert.strictEqual(done.status, "completed")
        assert.deepStrictEqual(done.result, { path: "/x" })
        assert.strictEqual(done.progress, 100)
        assert.strictEqual(done.attempt, 1)
        assert.isNull(done.error)
        assert.isNull(done.lockedBy)
        assert.isNull(done.lockedUntil)
        assert.deepStrictEqual(done.finishedAt, new Date(t))
        assert.deepStrictEqual(done.updatedAt, new Date(t))
        assert.deepStrictEqual(yield* get("a"), done)
      })
    )

    test(
      "settle Retry: pending at the backoff's runAt with the error, attempt kept; then Failed is terminal",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"])
        yield* claim(A, 1)
        const t = yield* now
        const retried = Option.getOrThrow(
          yield* settle("a", A, { _tag: "Retry", runAt: new Date(t + 2_000), error: error("first") })
        )
        assert.strictEqual(retried.status, "pending")
        assert.deepStrictEqual(retried.runAt, new Date(t + 2_000))
        assert.deepStrictEqual(retried.error, error("first"))
        assert.strictEqual(retried.attempt, 1)
        assert.isNull(retried.lockedBy)
        assert.isNull(retried.finishedAt)
        assert.strictEqual(yield* s.pendingCount, 1)
        assert.deepStrictEqual(ids(yield* claim(A, 1)), [])
        yield* TestClock.adjust(2_000)
        const [again] = yield* claim(A, 1)
        assert.strictEqual(again?.attempt, 2)
        const failed = Option.getOrThrow(yield* settle("a", A, { _tag: "Failed", error: error("second") }))
        assert.strictEqual(failed.status, "failed")
        assert.deepStrictEqual(failed.error, error("second"))
        assert.deepStrictEqual(failed.finishedAt, new Date(t + 2_000))
        assert.strictEqual(failed.attempt, 2)
      })
    )

    test(
      "settle Released: pending again and due now, for anyone",
      Effect.gen(function*() {
        yield* insertAt(["a"])
        yield* claim(A, 1)
        yield* TestClock.adjust(100)
        const t = yield* now
        const released = Option.getOrThrow(yield* settle("a", A, { _tag: "Released" }))
        assert.strictEqual(released.status, "pending")
        assert.deepStrictEqual(released.runAt, new Date(t))
        assert.isNull(released.lockedBy)
        const [again] = yield* claim(B, 1)
        assert.strictEqual(again?.id, "a")
        assert.strictEqual(again?.attempt, 2)
      })
    )

    test(
      "only the lease owner settles: another owner, a second settle, or a pending task get none",
      Effect.gen(function*() {
        yield* insertAt(["a"], ["b"])
        yield* claim(A, 1)
        assert.isTrue(Option.isNone(yield* settle("a", B, { _tag: "Completed", result: 1 })))
        assert.strictEqual((yield* get("a")).status, "processing")
        assert.isTrue(Option.isNone(yield* settle("b", A, { _tag: "Failed", error: error("x") })))
        assert.strictEqual((yield* get("b")).status, "pending")
        assert.isTrue(Option.isSome(yield* settle("a", A, { _tag: "Completed", result: 1 })))
        assert.isTrue(Option.isNone(yield* settle("a", A, { _tag: "Failed", error: error("again") })))
        const record = yield* get("a")
        assert.strictEqual(record.status, "completed")
        assert.isNull(record.error)
        assert.isTrue(Option.isNone(yield* settle("missing", A, { _tag: "Released" })))
      })
    )

    test(
      "requeue puts a failed or cancelled task back to pending from attempt zero; others are not finished",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"], ["b"], ["c"])
        yield* claim(A, 2)
        yield* settle("a", A, { _tag: "Failed", error: error("x") })
        yield* settle("b", A, { _tag: "Completed", result: 1 })
        yield* TestClock.adjust(50)
        const t = yield* now
        assert.strictEqual(yield* s.requeue(id("a")), "requeued")
        const record = yield* get("a")
        assert.strictEqual(record.status, "pending")
        assert.strictEqual(record.attempt, 0)
        assert.strictEqual(record.progress, 0)
        assert.isNull(record.error)
        assert.isNull(record.finishedAt)
        assert.isNull(record.startedAt)
        assert.deepStrictEqual(record.runAt, new Date(t))
        assert.strictEqual(yield* s.requeue(id("b")), "notFinished")
        assert.strictEqual(yield* s.requeue(id("c")), "notFinished")
        assert.strictEqual(yield* s.requeue(id("nope")), "notFound")
        assert.strictEqual(yield* s.cancel(id("c")), "cancelled")
        assert.strictEqual(yield* s.requeue(id("c")), "requeued")
        assert.deepStrictEqual(ids(yield* claim(A, 5)), ["a", "c"])
      })
    )

    test(
      "deleteFinishedBefore deletes up to limit tasks of one status finished before the cutoff",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["c1"], ["c2"], ["c3"], ["f1"], ["later"], ["pending"])
        yield* claim(A, 5)
        for (const name of ["c1", "c2", "c3"]) yield* settle(name, A, { _tag: "Completed", result: name })
        yield* settle("f1", A, { _tag: "Failed", error: error("x") })
        const cutoff = new Date((yield* now) + 1)
        yield* TestClock.adjust(10_000)
        yield* settle("later", A, { _tag: "Completed", result: "later" })
        assert.strictEqual(yield* s.deleteFinishedBefore("completed", cutoff, 2), 2)
        assert.strictEqual(yield* s.deleteFinishedBefore("completed", cutoff, 2), 1)
        assert.strictEqual(yield* s.deleteFinishedBefore("completed", cutoff, 2), 0)
        assert.deepStrictEqual(ids(yield* s.list({})), ["pending", "later", "f1"])
        assert.strictEqual(yield* s.deleteFinishedBefore("failed", cutoff, 10), 1)
        assert.strictEqual(yield* s.deleteFinishedBefore("pending", new Date((yield* now) + 1), 10), 0)
        assert.deepStrictEqual(ids(yield* s.list({})), ["pending", "later"])
      })
    )

    test(
      "nextRunAt gives the earliest runAt of pending tasks of these names, or an earlier lease expiry",
      Effect.gen(function*() {
        const s = yield* store
        const t = yield* now
        assert.isTrue(Option.isNone(yield* s.nextRunAt(["n"])))
        yield* insertAt(["later", { delay: 5_000 }], ["other", { name: "m", delay: 1_000 }])
        assert.deepStrictEqual(yield* s.nextRunAt(["n"]), Option.some(new Date(t + 5_000)))
        assert.deepStrictEqual(yield* s.nextRunAt(["n", "m"]), Option.some(new Date(t + 1_000)))
        yield* insertAt(["due"])
        assert.deepStrictEqual(yield* s.nextRunAt(["n"]), Option.some(new Date(t)))
        yield* claim(A, 1)
        assert.deepStrictEqual(yield* s.nextRunAt(["n"]), Option.some(new Date(t + LEASE)))
      })
    )

    test(
      "pendingCount counts pending tasks, due or not",
      Effect.gen(function*() {
        const s = yield* store
        assert.strictEqual(yield* s.pendingCount, 0)
        yield* insertAt(["a"], ["b", { delay: 1_000 }], ["c"])
        assert.strictEqual(yield* s.pendingCount, 3)
        yield* claim(A, 1)
        assert.strictEqual(yield* s.pendingCount, 2)
        yield* settle("a", A, { _tag: "Retry", runAt: new Date((yield* now) + 500), error: error("x") })
        assert.strictEqual(yield* s.pendingCount, 3)
      })
    )

    test(
      "setProgress records the owner's progress, ignores another owner's, and the last value lands by the settle",
      Effect.gen(function*() {
        const s = yield* store
        yield* insertAt(["a"])
        yield* claim(A, 1)
        yield* s.setProgress(id("a"), A, 40)
        assert.strictEqual((yield* get("a")).progress, 40)
        yield* s.setProgress(id("a"), B, 90)
        yield* s.setProgress(id("a"), A, 60)
        yield* s.setProgress(id("a"), A, 70)
        const failed = Option.getOrThrow(yield* settle("a", A, { _tag: "Failed", error: error("x") }))
        assert.strictEqual(failed.progress, 70)
        assert.strictEqual((yield* get("a")).progress, 70)
      })
    )

    test(
      "subscribe sees this store's changes of a record: insert, claim, progress, settle",
      Effect.gen(function*() {
        const s = yield* store
        const changes = yield* s.subscribe
        const seen = yield* Effect.fork(Stream.runCollect(Stream.take(changes, 4)))
        yield* insertAt(["a"])
        yield* claim(A, 1)
        yield* s.setProgress(id("a"), A, 50)
        yield* settle("a", A, { _tag: "Completed", result: "r" })
        const records = Chunk.toReadonlyArray(yield* Fiber.join(seen))
        assert.deepStrictEqual(records.map((r) => [r.id, r.status, r.progress]), [
          ["a", "pending", 0],
          ["a", "processing", 0],
          ["a", "processing", 50],
          ["a", "completed", 100]
        ])
      })
    )

    test(
      "concurrent claims get distinct tasks, and concurrent settles each get their own record",
      Effect.gen(function*() {
        yield* insertAt(["a"], ["b"], ["c"])
        const claims = yield* Effect.all(Array.from({ length: 5 }, () => claim(A, 1)), { concurrency: "unbounded" })
        const claimed = claims.flatMap(ids)
        assert.deepStrictEqual([...claimed].sort(), ["a", "b", "c"])
        assert.strictEqual(claims.filter((c) => c.length === 0).length, 2)
        const [a, b, c] = yield* Effect.all([
          settle("a", A, { _tag: "Completed", result: "ra" }),
          settle("b", A, { _tag: "Failed", error: error("eb") }),
          settle("c", B, { _tag: "Completed", result: "rc" })
        ], { concurrency: "unbounded" })
        assert.strictEqual(Option.getOrThrow(a).result, "ra")
        assert.deepStrictEqual(Option.getOrThrow(b).error, error("eb"))
        assert.isTrue(Option.isNone(c))
        assert.strictEqual((yield* get("c")).status, "processing")
      })
    )

    if (options.settleMany === true) {
      test(
        "settleMany settles a batch: each task its own outcome, results in order, none where not held",
        Effect.gen(function*() {
          const s = yield* store
          yield* insertAt(["a"], ["b"], ["c"], ["d"])
          assert.deepStrictEqual(ids(yield* claim(A, 3)), ["a", "b", "c"])
          const t = yield* now
          const results = yield* s.settleMany!(A, [
            [id("c"), { _tag: "Retry", runAt: new Date(t + 500), error: error("again") }],
            [id("d"), { _tag: "Completed", result: "not held" }],
            [id("a"), { _tag: "Completed", result: { ok: true } }],
            [id("b"), { _tag: "Failed", error: error("no") }]
          ])
          const [c, d, a, b] = results.map(Option.getOrNull)
          assert.strictEqual(c?.status, "pending")
          assert.strictEqual(c?.runAt.getTime(), t + 500)
          assert.isNull(d)
          assert.deepStrictEqual(a?.result, { ok: true })
          assert.strictEqual(a?.status, "completed")
          assert.strictEqual(b?.status, "failed")
          assert.deepStrictEqual(yield* get("a"), a)
          assert.strictEqual((yield* get("d")).status, "pending")
        })
      )
    }
  })
}
