/**
 * The benchmark's contenders, each one function: run `tasks` tasks of one workload at one
 * concurrency, from the first submit until the last completes, and check that every task
 * completed. A contender builds all its state afresh per run.
 *
 * Workloads: `noop` (the task does nothing) and `io` (the task waits 1 ms on a timer:
 * `Effect.sleep("1 millis")` for Effect, a `setTimeout(1)` promise for the others).
 */
import { Effect, Layer, Schema } from "effect"
import PQueue from "p-queue"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import { GuideEngine } from "./guide.js"

/** What a task does. */
export type Workload = "noop" | "io"

/** One measured run: wall time and this process's CPU time (all threads, GC included). */
export interface Run {
  readonly tasks: number
  readonly millis: number
  readonly cpuMicros: number
}

/** Starts a stopwatch over wall and CPU time; call the result to read both. */
const stopwatch = (): (() => { readonly millis: number; readonly cpuMicros: number }) => {
  const cpu = process.cpuUsage()
  const start = performance.now()
  return () => {
    const millis = performance.now() - start
    const used = process.cpuUsage(cpu)
    return { millis, cpuMicros: used.user + used.system }
  }
}

/** A contender: runs `tasks` tasks at `concurrency`, fails unless all of them completed. */
export type Contender = (workload: Workload, tasks: number, concurrency: number) => Promise<Run>

const check = (what: string, completed: number, tasks: number): void => {
  if (completed !== tasks) throw new Error(`${what}: ${completed} of ${tasks} tasks completed`)
}

const sleep1 = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1))
const noop = async (): Promise<void> => {}

// -- effect-tasks ------------------------------------------------------------------------------

const Payload = Schema.Struct({ i: Schema.Number })
/** The no-op task. */
export const Noop = Task.make("bench-noop", { payload: Payload })
/** The 1 ms I/O task. */
export const Sleep = Task.make("bench-io", { payload: Payload })

const engineLayer = (workload: Workload, concurrency: number) => {
  const handler = workload === "noop" ? Noop.toLayer(() => Effect.void) : Sleep.toLayer(() => Effect.sleep("1 millis"))
  return handler.pipe(
    Layer.provideMerge(TaskEngine.layer({ maxConcurrent: concurrency, cleanup: false })),
    Layer.provide(TaskStore.layerMemory)
  )
}

/** The real engine over the memory store: status tracking and metrics on; one `submit` per task. */
export const effectTasks: Contender = (workload, tasks, concurrency) => {
  const definition = workload === "noop" ? Noop : Sleep
  const program = Effect.gen(function*() {
    const engine = yield* TaskEngine.TaskEngine
    const stop = stopwatch()
    for (let i = 0; i < tasks; i++) {
      yield* engine.submit(definition, { i })
    }
    yield* engine.drain
    const { cpuMicros, millis } = stop()
    const metrics = yield* engine.metrics
    check("effect-tasks (metrics)", metrics.tasks[definition.name]?.completed ?? 0, tasks)
    const records = yield* engine.list({ status: "completed" })
    check("effect-tasks (store)", records.length, tasks)
    return { tasks, millis, cpuMicros }
  })
  return Effect.runPromise(program.pipe(Effect.provide(engineLayer(workload, concurrency))))
}

// -- the guide's design ------------------------------------------------------------------------

/** TaskQueue → ResourceAwareTask (polling every 100 ms) with statuses in the TaskManager. */
export const guide: Contender = async (workload, tasks, concurrency) => {
  const engine = new GuideEngine(concurrency)
  const work = workload === "noop" ? noop : sleep1
  const stop = stopwatch()
  for (let i = 0; i < tasks; i++) engine.submit(`task-${i}`, work)
  await engine.whenIdle()
  const { cpuMicros, millis } = stop()
  check("guide (TaskManager)", engine.manager.countByStatus().completed, tasks)
  check("guide (TaskMetrics)", engine.metrics.get("tasks_completed"), tasks)
  return { tasks, millis, cpuMicros }
}

// -- p-queue -----------------------------------------------------------------------------------

/** p-queue 9 at the same concurrency; it tracks nothing. */
export const pQueue: Contender = async (workload, tasks, concurrency) => {
  const queue = new PQueue({ concurrency })
  const work = workload === "noop" ? noop : sleep1
  let completed = 0
  const task = async () => {
    await work()
    completed++
  }
  const stop = stopwatch()
  for (let i = 0; i < tasks; i++) void queue.add(task)
  await queue.onIdle()
  const { cpuMicros, millis } = stop()
  check("p-queue", completed, tasks)
  return { tasks, millis, cpuMicros }
}

// -- Effect.forEach ----------------------------------------------------------------------------

/** Plain `Effect.forEach` with `{ concurrency }`: the Effect runtime's own floor. */
export const effectForEach: Contender = (workload, tasks, concurrency) => {
  const items = Array.from({ length: tasks }, (_, i) => i)
  let completed = 0
  const count = Effect.sync(() => {
    completed++
  })
  const work = workload === "noop" ? count : Effect.zipRight(Effect.sleep("1 millis"), count)
  return Effect.runPromise(
    Effect.suspend(() => {
      const stop = stopwatch()
      return Effect.as(Effect.forEach(items, () => work, { concurrency, discard: true }), stop)
    }).pipe(
      Effect.map((stop): Run => {
        const { cpuMicros, millis } = stop()
        check("Effect.forEach", completed, tasks)
        return { tasks, millis, cpuMicros }
      })
    )
  )
}
