import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Stream, TestClock } from "effect"
import { layerMemory } from "../src/layers/MemoryTaskStore.js"
import type { TaskId } from "../src/services/TaskRecord.js"
import { TaskStore } from "../src/services/TaskStore.js"
import { taskStoreContract } from "./TaskStoreContract.js"

// the layer is built per test: each test has a fresh, empty store
taskStoreContract(it, layerMemory)

const task = (id: string, runAt: Date) => ({
  id: id as TaskId,
  name: "job",
  payload: { n: 1 },
  priority: 0,
  runAt,
  idempotencyKey: null
})

describe("MemoryTaskStore.local", () => {
  it.effect("serves the store that made it, and no store that replaced one of its operations", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore
      const local = store.local!
      assert.isTrue(local.serves(store))
      assert.isFalse(local.serves({ ...store, settle: (...args) => store.settle(...args) }))
      assert.isFalse(local.serves({ ...store, insert: (tasks) => store.insert(tasks) }))
    }).pipe(Effect.provide(layerMemory)))

  it.effect("does at once what the Effect forms do, and each sees the other's changes", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore
      const local = store.local!
      yield* TestClock.setTime(1_000)
      const now = new Date(1_000)
      assert.deepStrictEqual(local.insert([task("a", now), task("b", now)]), [
        { id: "a" as TaskId, inserted: true },
        { id: "b" as TaskId, inserted: true }
      ])
      assert.strictEqual(Option.getOrThrow(yield* store.get("a" as TaskId)).status, "pending")

      assert.deepStrictEqual(local.claimOne(["job"], "me", 5_000), {
        id: "a" as TaskId,
        name: "job",
        payload: { n: 1 },
        attempt: 1
      })
      const a = local.get("a" as TaskId)!
      assert.strictEqual(a.status, "processing")
      assert.deepStrictEqual(a.lockedUntil, new Date(6_000))
      assert.deepStrictEqual(a, Option.getOrThrow(yield* store.get("a" as TaskId)))
      assert.isUndefined(local.claimOne(["other"], "me", 5_000))

      // only the owner settles; a retry answers its runAt, an ending -Infinity
      assert.isUndefined(local.settle("a" as TaskId, "someone else", { _tag: "Completed", result: 1 }))
      const error = { tag: "E", message: "e", cause: "e" }
      assert.strictEqual(local.settle("a" as TaskId, "me", { _tag: "Retry", runAt: new Date(9_000), error }), 9_000)
      assert.strictEqual(local.get("a" as TaskId)!.status, "pending")

      const [b] = yield* store.claim({ names: ["job"], limit: 1, owner: "me", leaseMillis: 5_000 })
      assert.strictEqual(b!.id, "b")
      assert.strictEqual(
        local.settle("b" as TaskId, "me", { _tag: "Completed", result: 2 }),
        Number.NEGATIVE_INFINITY
      )
      const done = Option.getOrThrow(yield* store.get("b" as TaskId))
      assert.strictEqual(done.status, "completed")
      assert.strictEqual(done.result, 2)
      assert.isUndefined(local.get("nope" as TaskId))
    }).pipe(Effect.provide(layerMemory)))
})

describe("MemoryTaskStore records", () => {
  it.scoped("share no Date: a caller changing one changes no other record, nor the stored one", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore
      const first = yield* store.subscribe
      const second = yield* store.subscribe
      const seenFirst = yield* Effect.fork(Stream.runCollect(Stream.take(first, 2)))
      const seenSecond = yield* Effect.fork(Stream.runCollect(Stream.take(second, 2)))
      yield* TestClock.setTime(10_000)
      const t = 10_000
      const submitted = task("a", new Date(t))
      yield* store.insert([submitted])
      submitted.runAt.setTime(0)
      const [claimed] = yield* store.claim({ names: ["job"], limit: 1, owner: "me", leaseMillis: 5_000 })
      const stored = Option.getOrThrow(yield* store.get("a" as TaskId))
      const [inserted1, claimed1] = Chunk.toReadonlyArray(yield* Fiber.join(seenFirst))
      const [inserted2, claimed2] = Chunk.toReadonlyArray(yield* Fiber.join(seenSecond))
      for (const record of [claimed!, inserted1!, claimed1!, stored]) {
        for (const date of [record.runAt, record.createdAt, record.updatedAt, record.startedAt, record.lockedUntil]) {
          date?.setTime(1)
        }
      }
      const again = Option.getOrThrow(yield* store.get("a" as TaskId))
      for (const record of [inserted2!, claimed2!, again]) {
        assert.strictEqual(record.runAt.getTime(), t, record.status)
        assert.strictEqual(record.createdAt.getTime(), t)
        assert.strictEqual(record.updatedAt.getTime(), t)
      }
      for (const record of [claimed2!, again]) {
        assert.strictEqual(record.startedAt!.getTime(), t)
        assert.strictEqual(record.lockedUntil!.getTime(), t + 5_000)
      }
    }).pipe(Effect.provide(layerMemory)))
})

describe("MemoryTaskStore signals to the engines sharing it", () => {
  it.scoped("onWakeup: every engine but the inserting one hears of new work, with when it falls due", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore
      yield* TestClock.setTime(1_000)
      const heard: Array<readonly [string, number | undefined]> = []
      yield* store.onWakeup!((at) => void heard.push(["a", at]), "a")
      yield* store.onWakeup!((at) => void heard.push(["b", at]), "b")
      const signals = yield* Effect.fork(Stream.runCollect(Stream.take(store.wakeups, 1)))
      yield* TestClock.adjust(0)
      store.local!.insert([task("1", new Date(1_000))], "a")
      yield* store.insert([task("2", new Date(5_000))])
      assert.deepStrictEqual(heard, [["b", 1_000], ["a", 5_000], ["b", 5_000]])
      assert.strictEqual(Chunk.size(yield* Fiber.join(signals)), 1)
      // a release by one engine wakes the others
      heard.length = 0
      const claimed = store.local!.claimOne(["job"], "a", 5_000)!
      store.local!.settle(claimed.id, "a", { _tag: "Released" })
      assert.deepStrictEqual(heard, [["b", 1_000]])
    }).pipe(Effect.provide(layerMemory)))

  it.scoped("onRoom hears of every task leaving the backlog; onFinished of the ends others made", () =>
    Effect.gen(function*() {
      const store = yield* TaskStore
      let room = 0
      const finished: Array<readonly [string, string]> = []
      yield* store.onRoom!(() => void room++)
      yield* store.onFinished!((record) => void finished.push(["a", record.id]), "a")
      yield* store.onFinished!((record) => void finished.push(["b", record.id]), "b")
      const now = new Date(0)
      yield* store.insert([task("1", now), task("2", now), task("3", now)])
      store.local!.claimOne(["job"], "a", 5_000)
      yield* store.claim({ names: ["job"], limit: 1, owner: "b", leaseMillis: 5_000 })
      yield* store.cancel("3" as TaskId)
      assert.strictEqual(room, 3)
      store.local!.settle("1" as TaskId, "a", { _tag: "Completed", result: 1 })
      yield* store.settle("2" as TaskId, "b", { _tag: "Failed", error: { tag: "E", message: "e", cause: "e" } })
      assert.deepStrictEqual(finished, [["a", "3"], ["b", "3"], ["b", "1"], ["a", "2"]])
    }).pipe(Effect.provide(layerMemory)))
})
