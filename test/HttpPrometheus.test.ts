import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import { constantTimeEquals } from "../src/http/BearerAuth.js"
import { Prometheus } from "../src/index.js"

const uniqueName = (base: string) => `${base}_${Math.random().toString(36).slice(2, 8)}`

describe("Prometheus", () => {
  it.effect("renders counters and gauges with escaped labels and one TYPE line per family", () =>
    Effect.gen(function*() {
      const name = `${uniqueName("test_jobs")}_total`
      const counter = Metric.counter(name, { description: "Jobs\nseen" })
      yield* Metric.update(counter.pipe(Metric.tagged("task", "a\"b\\c\nd")), 1)
      yield* Metric.update(counter.pipe(Metric.tagged("task", "plain")), 3)
      const gauge = uniqueName("test_depth")
      yield* Metric.set(Metric.gauge(gauge), 7)
      const text = yield* Prometheus.snapshot
      assert.include(text, `# HELP ${name} Jobs\\nseen\n# TYPE ${name} counter\n`)
      assert.strictEqual(text.split(`# TYPE ${name} `).length, 2)
      assert.include(text, `${name}{task="a\\"b\\\\c\\nd"} 1\n`)
      assert.include(text, `${name}{task="plain"} 3\n`)
      assert.include(text, `# TYPE ${gauge} gauge\n${gauge} 7\n`)
    }))

  it.effect("renders a histogram as cumulative buckets with +Inf, _sum and _count", () =>
    Effect.gen(function*() {
      const name = uniqueName("test_latency_ms")
      const histogram = Metric.histogram(name, MetricBoundaries.fromIterable([10, 100]))
      yield* Effect.forEach([5, 50, 500, 7], (v) => Metric.update(histogram, v), { discard: true })
      const text = yield* Prometheus.snapshot
      assert.include(
        text,
        [
          `# TYPE ${name} histogram`,
          `${name}_bucket{le="10"} 2`,
          `${name}_bucket{le="100"} 3`,
          `${name}_bucket{le="+Inf"} 4`,
          `${name}_sum 562`,
          `${name}_count 4`
        ].join("\n")
      )
    }))

  it.effect("cleans metric and label names that Prometheus would refuse", () =>
    Effect.gen(function*() {
      const suffix = Math.random().toString(36).slice(2, 8)
      yield* Metric.update(Metric.counter(`9bad.name-${suffix}`).pipe(Metric.tagged("a-b", "v")), 1)
      const text = yield* Prometheus.snapshot
      // a counter's name ends in _total, added when missing
      assert.include(text, `_9bad_name_${suffix}_total{a_b="v"} 1\n`)
    }))
})

describe("BearerAuth.constantTimeEquals", () => {
  it("is true only for the same secret", () => {
    assert.isTrue(constantTimeEquals("s3cret", "s3cret"))
    for (const other of ["", "s3cre", "s3cret!", "S3cret", "t3cret", "s3cres", "s3cret".repeat(2)]) {
      assert.isFalse(constantTimeEquals("s3cret", other), other)
    }
  })
})
