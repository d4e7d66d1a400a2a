/**
 * Heap bytes per queued task: submits `count` tasks that cannot start yet and reports
 * `(heapUsed after - heapUsed before) / count`, both read after full garbage collections. Run in a
 * child process of its own, with `--expose-gc`, one contender per process:
 *
 *   node --expose-gc --import tsx bench/memory.ts effect-tasks|p-queue|guide [count]
 *
 * - effect-tasks: the real engine (memory store, metrics on) at `maxConcurrent: 1`; the first
 *   task's handler waits on a `Deferred`, so the other `count` tasks stay pending in the store.
 * - p-queue: a paused queue (`autoStart: false`) and `count` calls to `queue.add`.
 * - guide: the guide's design at `MAX_CONCURRENT = 1` with its first task blocked: each waiting
 *   task is a promise in `ResourceAwareTask`'s polling loop, plus its `TaskManager` status.
 *
 * Each task carries its own payload object (`{ i }`) and, for the promise-based queues, its own
 * closure, as real tasks do. Prints one JSON line.
 */
import { Deferred, Effect, Layer } from "effect"
import PQueue from "p-queue"
import { TaskEngine, TaskStore } from "../src/index.js"
import { Noop } from "./contenders.js"
import { GuideEngine } from "./guide.js"

/** One measurement. */
export interface MemoryResult {
  readonly contender: string
  readonly tasks: number
  readonly heapBefore: number
  readonly heapAfter: number
  readonly bytesPerTask: number
}

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")

const heapUsed = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const result = (contender: string, tasks: number, heapBefore: number, heapAfter: number): MemoryResult => ({
  contender,
  tasks,
  heapBefore,
  heapAfter,
  bytesPerTask: Math.round((heapAfter - heapBefore) / tasks)
})

const effectTasks = (count: number): Promise<MemoryResult> =>
  Effect.gen(function*() {
    const blocked = yield* Deferred.make<void>()
    const layer = Noop.toLayer(() => Deferred.await(blocked)).pipe(
      Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 1, cleanup: false })),
      Layer.provide(TaskStore.layerMemory)
    )
    return yield* Effect.gen(function*() {
      const engine = yield* TaskEngine.TaskEngine
      // the first task takes the only slot and waits; let it start before measuring
      yield* engine.submit(Noop, { i: -1 })
      yield* Effect.yieldNow()
      yield* Effect.sleep("10 millis")
      const before = heapUsed()
      for (let i = 0; i < count; i++) {
        yield* engine.submit(Noop, { i })
      }
      const after = heapUsed()
      const metrics = yield* engine.metrics
      const counts = metrics.tasks[Noop.name]
      if (counts === undefined || counts.queued !== count || counts.running !== 1) {
        throw new Error(`effect-tasks: expected ${count} queued and 1 running, got ${JSON.stringify(counts)}`)
      }
      yield* Deferred.succeed(blocked, undefined)
      return result("effect-tasks", count, before, after)
    }).pipe(Effect.provide(layer))
  }).pipe(Effect.runPromise)

const pQueue = async (count: number): Promise<MemoryResult> => {
  const queue = new PQueue({ concurrency: 1, autoStart: false })
  const before = heapUsed()
  for (let i = 0; i < count; i++) {
    const payload = { i }
    void queue.add(async () => {
      void payload
    })
  }
  const after = heapUsed()
  if (queue.size !== count) throw new Error(`p-queue: ${queue.size} queued, expected ${count}`)
  queue.clear()
  return result("p-queue", count, before, after)
}

const guide = async (count: number): Promise<MemoryResult> => {
  const engine = new GuideEngine(1)
  let release!: () => void
  const blocked = new Promise<void>((resolve) => {
    release = resolve
  })
  engine.submit("task-blocked", () => blocked)
  await new Promise((resolve) => setTimeout(resolve, 10))
  const before = heapUsed()
  for (let i = 0; i < count; i++) {
    const payload = { i }
    engine.submit(`task-${i}`, async () => {
      void payload
    })
  }
  // let the queue hand every task to ResourceAwareTask, where they wait by polling
  await new Promise((resolve) => setImmediate(resolve))
  const after = heapUsed()
  const pending = engine.manager.countByStatus()
  if (pending.pending !== count) throw new Error(`guide: ${pending.pending} pending, expected ${count}`)
  release()
  return result("guide", count, before, after)
}

const contenders: Record<string, (count: number) => Promise<MemoryResult>> = {
  "effect-tasks": effectTasks,
  "p-queue": pQueue,
  guide
}

const name = process.argv[2] ?? "effect-tasks"
const count = Number(process.argv[3] ?? 200_000)
const run = contenders[name]
if (run === undefined) throw new Error(`unknown contender ${name}; one of ${Object.keys(contenders).join(", ")}`)
const measured = await run(count)
process.stdout.write(`${JSON.stringify(measured)}\n`)
process.exit(0)
