/**
 * Where a task's time goes: the costs of the pieces an engine is built from, measured on this
 * machine, and the engine's own submit and run phases. Not part of `npm run bench`.
 *
 *   npx tsx bench/profile.ts            # the tables below (about a minute)
 *   npx tsx bench/profile.ts engine     # only the engine phases
 *   node --cpu-prof --cpu-prof-dir=.prof --import tsx bench/profile.ts engine
 *                                       # then open the .cpuprofile in Chrome DevTools
 *
 * Each figure is the median of 3 runs of 100,000 operations, in microseconds per operation. The
 * `Effect` pieces run in a sequential `Effect.gen` loop; "net" subtracts the empty loop. CPU time
 * per task (`process.cpuUsage`) is given beside wall time for the engine phases: less sensitive
 * to other processes on a shared machine.
 */
import { Context, Deferred, Effect, Fiber, FiberRef, Layer, Queue, Schedule, Schema } from "effect"
import PQueue from "p-queue"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import type { TaskId } from "../src/services/TaskRecord.js"

const N = 100_000
const ROUNDS = 3

const median = (values: ReadonlyArray<number>): number => [...values].sort((a, b) => a - b)[values.length >> 1]!

/** Median microseconds per operation of `run`, which performs `N` operations. */
const measure = async (run: () => Promise<unknown>): Promise<number> => {
  const micros: Array<number> = []
  await run() // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now()
    await run()
    micros.push(((performance.now() - start) * 1000) / N)
  }
  return median(micros)
}

const loop = (step: (i: number) => Effect.Effect<unknown>) => () =>
  Effect.runPromise(
    Effect.gen(function*() {
      for (let i = 0; i < N; i++) yield* step(i)
    })
  )

const plain = (step: (i: number) => unknown) => async () => {
  for (let i = 0; i < N; i++) step(i)
}

const row = (label: string, micros: number, baseline?: number): void => {
  const net = baseline === undefined ? "" : `   net ${(micros - baseline).toFixed(2)}`
  console.log(`  ${label.padEnd(58)}${micros.toFixed(2).padStart(7)} us${net}`)
}

const floors = async (): Promise<void> => {
  console.log("whole runs of 100,000 no-op tasks at concurrency 5 (us per task)")
  row(
    "p-queue",
    await measure(async () => {
      const queue = new PQueue({ concurrency: 5 })
      const task = async () => {}
      for (let i = 0; i < N; i++) void queue.add(task)
      await queue.onIdle()
    })
  )
  const items = Array.from({ length: N }, (_, i) => i)
  row(
    "Effect.forEach { concurrency: 5 }",
    await measure(() => Effect.runPromise(Effect.forEach(items, () => Effect.void, { concurrency: 5, discard: true })))
  )
  row(
    "5 worker fibers taking from a Queue",
    await measure(() =>
      Effect.runPromise(
        Effect.gen(function*() {
          const queue = yield* Queue.unbounded<number>()
          const done = yield* Deferred.make<void>()
          let left = N
          const worker = Effect.forever(
            Effect.flatMap(Queue.take(queue), () =>
              Effect.sync(() => {
                if (--left === 0) Deferred.unsafeDone(done, Effect.void)
              }))
          )
          const fibers = yield* Effect.forEach(items.slice(0, 5), () => Effect.fork(worker))
          for (let i = 0; i < N; i++) queue.unsafeOffer(i)
          yield* Deferred.await(done)
          yield* Fiber.interruptAll(fibers)
        })
      )
    )
  )
}

const pieces = async (): Promise<void> => {
  console.log("\npieces, one at a time in an Effect.gen loop (us per operation)")
  const baseline = await measure(loop(() => Effect.void))
  row("empty loop (yield* Effect.void)", baseline)
  row("Effect.sync", await measure(loop(() => Effect.sync(() => 1))), baseline)
  row("nested Effect.gen", await measure(loop(() => Effect.gen(function*() { yield* Effect.void }))), baseline)
  const context = Context.make(TaskStore.TaskStore, {} as TaskStore.TaskStore)
  row("Effect.provide(context)", await measure(loop(() => Effect.provide(Effect.void, context))), baseline)
  const ref = FiberRef.unsafeMake<unknown>(undefined)
  row("FiberRef.set", await measure(loop((i) => FiberRef.set(ref, i))), baseline)
  row("Effect.fork + Fiber.await", await measure(loop(() => Effect.flatMap(Effect.fork(Effect.void), Fiber.await))), baseline)
  const schedule = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(4)))
  row("Effect.retry(effect, schedule), effect succeeds", await measure(loop(() => Effect.retry(Effect.void, schedule))), baseline)
  row(
    "Effect.catchAll(effect, () => Effect.retry(...)), succeeds",
    await measure(loop(() => Effect.catchAll(Effect.void, () => Effect.retry(Effect.void, schedule)))),
    baseline
  )
  row("Effect.withSpan", await measure(loop(() => Effect.withSpan(Effect.void, "span"))), baseline)
  row(
    "Deferred.make + unsafeDone + await (a wake-up)",
    await measure(loop(() =>
      Effect.flatMap(Deferred.make<void>(), (d) => {
        Deferred.unsafeDone(d, Effect.void)
        return Deferred.await(d)
      })
    )),
    baseline
  )
  const queue = Effect.runSync(Queue.unbounded<number>())
  row("Queue.offer + Queue.take", await measure(loop((i) => Effect.zipRight(queue.offer(i), queue.take))), baseline)
  const Payload = Schema.Struct({ i: Schema.Number })
  const encode = Schema.encodeEither(Payload)
  const decode = Schema.decodeUnknownEither(Payload)
  row("Schema encodeEither { i: Number } (plain call)", await measure(plain((i) => encode({ i }))))
  row("Schema decodeUnknownEither { i: Number } (plain call)", await measure(plain((i) => decode({ i }))))
  row("new Date() (plain call)", await measure(plain(() => new Date())))
  row("crypto.randomUUID() (plain call)", await measure(plain(() => crypto.randomUUID())))
  row(
    "MemoryTaskStore insert, 100,000 in one call (per task)",
    await measure(async () => {
      const store = Effect.runSync(TaskStore.makeMemory())
      const runAt = new Date()
      const tasks = Array.from({ length: N }, (_, i) => ({
        id: `task-${i}` as TaskId,
        name: "bench",
        payload: { i },
        priority: 0,
        runAt,
        idempotencyKey: null
      }))
      Effect.runSync(store.insert(tasks))
    })
  )
}

const Noop = Task.make("profile-noop", { payload: Schema.Struct({ i: Schema.Number }) })

/** Submits `N` tasks with no handler registered, then registers one and drains. */
const phases = (concurrency: number) =>
  Effect.gen(function*() {
    const engine = yield* TaskEngine.TaskEngine
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < N; i++) yield* engine.submit(Noop, { i })
    const t1 = performance.now()
    const cpu1 = process.cpuUsage(cpu0)
    yield* engine.register({ definition: Noop, run: () => Effect.void, context: Context.empty() })
    yield* engine.drain
    const t2 = performance.now()
    const cpu2 = process.cpuUsage(cpu0)
    const completed = (yield* engine.metrics).tasks[Noop.name]?.completed ?? 0
    if (completed !== N) throw new Error(`engine: ${completed} of ${N} completed`)
    return {
      submit: ((t1 - t0) * 1000) / N,
      submitCpu: (cpu1.user + cpu1.system) / N,
      run: ((t2 - t1) * 1000) / N,
      runCpu: (cpu2.user + cpu2.system - cpu1.user - cpu1.system) / N
    }
  }).pipe(
    Effect.provide(
      TaskEngine.layer({ maxConcurrent: concurrency, cleanup: false, definitions: [Noop] }).pipe(
        Layer.provide(TaskStore.layerMemory)
      )
    )
  )

const engine = async (): Promise<void> => {
  console.log("\nthe engine (src/), 100,000 no-op tasks: submit all with no handler, then run them all (us per task)")
  for (const concurrency of [5, 100]) {
    const runs: Array<{ submit: number; submitCpu: number; run: number; runCpu: number }> = []
    await Effect.runPromise(phases(concurrency)) // warm-up
    for (let round = 0; round < ROUNDS; round++) runs.push(await Effect.runPromise(phases(concurrency)))
    const pick = (k: keyof (typeof runs)[number]) => median(runs.map((r) => r[k])).toFixed(2).padStart(7)
    console.log(
      `  concurrency ${String(concurrency).padEnd(4)} submit ${pick("submit")} us (cpu ${pick("submitCpu")})` +
        `   claim+execute+settle ${pick("run")} us (cpu ${pick("runCpu")})`
    )
  }
}

const only = process.argv[2]
if (only === undefined || only === "floors") await floors()
if (only === undefined || only === "pieces") await pieces()
if (only === undefined || only === "engine") await engine()
