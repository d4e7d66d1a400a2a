/**
 * The in-memory `TaskMetrics`: per-name counters, gauges and duration figures for one engine
 * instance (the snapshot), mirrored into Effect's global `Metric` registry (counters
 * `effect_tasks_<event>_total`, gauges `effect_tasks_running` / `effect_tasks_queued` and the
 * histogram `effect_tasks_duration_seconds`, each tagged `task=<name>`), which `/metrics` exposes.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Metric, MetricBoundaries, MetricKey } from "effect"
import type { MetricEvent, MetricsSnapshot, TaskCounts } from "../services/TaskMetrics.js"
import { TaskMetrics } from "../services/TaskMetrics.js"

interface Counts {
  submitted: number
  started: number
  completed: number
  failed: number
  retried: number
  timedOut: number
  cancelled: number
  released: number
  running: number
  queued: number
  durationCount: number
  durationTotal: number
  durationMin: number
  durationMax: number
}

interface Instruments {
  readonly counts: Counts
  readonly counters: Readonly<Record<MetricEvent, Metric.Metric.Counter<number>>>
  readonly running: Metric.Metric.Gauge<number>
  readonly queued: Metric.Metric.Gauge<number>
  readonly duration: Metric.Metric.Histogram<number>
}

const events: ReadonlyArray<MetricEvent> = [
  "submitted",
  "started",
  "completed",
  "failed",
  "retried",
  "timedOut",
  "cancelled",
  "released"
]

const counterNames: Record<MetricEvent, string> = {
  submitted: "effect_tasks_submitted_total",
  started: "effect_tasks_started_total",
  completed: "effect_tasks_completed_total",
  failed: "effect_tasks_failed_total",
  retried: "effect_tasks_retried_total",
  timedOut: "effect_tasks_timed_out_total",
  cancelled: "effect_tasks_cancelled_total",
  released: "effect_tasks_released_total"
}

// seconds, Prometheus's base unit: 1 ms to about 9 minutes
const durationBoundaries = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 20 })

const emptyCounts = (): Counts => ({
  submitted: 0,
  started: 0,
  completed: 0,
  failed: 0,
  retried: 0,
  timedOut: 0,
  cancelled: 0,
  released: 0,
  running: 0,
  queued: 0,
  durationCount: 0,
  durationTotal: 0,
  durationMin: 0,
  durationMax: 0
})

// Each metric is made from a key that carries the task tag, so that `unsafeUpdate(v, [])` hits
// the metric's cached registry hook; `Metric.tagged` would look the registry up on every update.
const instrumentsFor = (name: string): Instruments => {
  const counters = {} as Record<MetricEvent, Metric.Metric.Counter<number>>
  for (const event of events) {
    counters[event] = Metric.fromMetricKey(
      MetricKey.counter(counterNames[event], { description: `Tasks ${event}` }).pipe(MetricKey.tagged("task", name))
    )
  }
  return {
    counts: emptyCounts(),
    counters,
    running: Metric.fromMetricKey(
      MetricKey.gauge("effect_tasks_running", { description: "Task attempts running now" }).pipe(
        MetricKey.tagged("task", name)
      )
    ),
    queued: Metric.fromMetricKey(
      MetricKey.gauge("effect_tasks_queued", { description: "Tasks waiting to run" }).pipe(
        MetricKey.tagged("task", name)
      )
    ),
    duration: Metric.fromMetricKey(
      MetricKey.histogram("effect_tasks_duration_seconds", durationBoundaries, "Attempt durations in seconds").pipe(
        MetricKey.tagged("task", name)
      )
    )
  }
}

const noTags: ReadonlyArray<never> = []

const apply = (i: Instruments, event: MetricEvent, value: number): void => {
  const c = i.counts
  let duration = false
  switch (event) {
    case "submitted":
      c.submitted += value
      c.queued += value
      i.counters.submitted.unsafeUpdate(value, noTags)
      i.queued.unsafeUpdate(c.queued, noTags)
      return
    case "started":
      c.started++
      c.running++
      c.queued--
      i.counters.started.unsafeUpdate(1, noTags)
      break
    case "completed":
      c.completed++
      c.running--
      duration = true
      i.counters.completed.unsafeUpdate(1, noTags)
      break
    case "failed":
      c.failed++
      c.running--
      duration = true
      i.counters.failed.unsafeUpdate(1, noTags)
      break
    case "retried":
      c.retried++
      c.running--
      c.queued++
      duration = true
      i.counters.retried.unsafeUpdate(1, noTags)
      break
    case "timedOut":
      c.timedOut++
      i.counters.timedOut.unsafeUpdate(1, noTags)
      return
    case "cancelled":
      c.cancelled++
      if (value > 0) c.running--
      else c.queued--
      i.counters.cancelled.unsafeUpdate(1, noTags)
      break
    case "released":
      c.released++
      c.running--
      c.queued++
      i.counters.released.unsafeUpdate(1, noTags)
      break
  }
  if (duration) {
    c.durationTotal += value
    c.durationMin = c.durationCount === 0 ? value : Math.min(c.durationMin, value)
    c.durationMax = Math.max(c.durationMax, value)
    c.durationCount++
    i.duration.unsafeUpdate(value / 1000, noTags)
  }
  i.running.unsafeUpdate(c.running, noTags)
  i.queued.unsafeUpdate(c.queued, noTags)
}

const toTaskCounts = (c: Counts): TaskCounts => ({
  submitted: c.submitted,
  started: c.started,
  completed: c.completed,
  failed: c.failed,
  retried: c.retried,
  timedOut: c.timedOut,
  cancelled: c.cancelled,
  released: c.released,
  running: c.running,
  queued: c.queued,
  duration: {
    count: c.durationCount,
    totalMillis: c.durationTotal,
    minMillis: c.durationMin,
    maxMillis: c.durationMax
  }
})

const add = (total: Counts, c: Counts): void => {
  total.submitted += c.submitted
  total.started += c.started
  total.completed += c.completed
  total.failed += c.failed
  total.retried += c.retried
  total.timedOut += c.timedOut
  total.cancelled += c.cancelled
  total.released += c.released
  total.running += c.running
  total.queued += c.queued
  if (c.durationCount > 0) {
    total.durationMin = total.durationCount === 0 ? c.durationMin : Math.min(total.durationMin, c.durationMin)
    total.durationMax = Math.max(total.durationMax, c.durationMax)
  }
  total.durationCount += c.durationCount
  total.durationTotal += c.durationTotal
}

/**
 * Builds an in-memory metrics service for one engine.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<TaskMetrics> = Effect.sync(() => {
  const byName = new Map<string, Instruments>()
  const instruments = (name: string): Instruments => {
    let i = byName.get(name)
    if (i === undefined) {
      i = instrumentsFor(name)
      byName.set(name, i)
    }
    return i
  }
  return TaskMetrics.of({
    record: (name, event, value) => apply(instruments(name), event, value),
    snapshot: Effect.clockWith((clock) =>
      Effect.sync((): MetricsSnapshot => {
        const total = emptyCounts()
        const tasks: Record<string, TaskCounts> = {}
        for (const [name, i] of byName) {
          tasks[name] = toTaskCounts(i.counts)
          add(total, i.counts)
        }
        const totals = toTaskCounts(total)
        return { ...totals, timestamp: new Date(clock.unsafeCurrentTimeMillis()), total: totals, tasks }
      })
    )
  })
})

/**
 * In-memory metrics (the default when no `TaskMetrics` layer is provided).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TaskMetrics> = Layer.effect(TaskMetrics, make)
