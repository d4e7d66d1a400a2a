/**
 * The Prometheus text exposition format (version 0.0.4) of Effect's metric registry: every metric
 * of the process, the engine's `effect_tasks_*` counters, gauges and duration histogram among
 * them (tagged `task=<name>`), as `GET /metrics` serves it. It passes `promtool check metrics`:
 * a counter's name ends in `_total` (added when missing), Effect's `effect_fiber_active` (a
 * counter that counts down as well) is a gauge, and a metric without a description gets a help
 * text naming it.
 *
 * @since 0.1.0
 */
import type { MetricPair } from "effect"
import { Effect, Metric, MetricState, Option } from "effect"

/**
 * The content type of the exposition format.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const metricName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : `_${cleaned}`
}

const labelName = (name: string): string => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(cleaned) ? cleaned : `_${cleaned}`
}

const labelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

const helpText = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const num = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

/** Effect's runtime counters that count down as well as up: gauges to Prometheus. */
const upAndDown: ReadonlySet<string> = new Set(["effect_fiber_active"])

type Labels = ReadonlyArray<readonly [string, string]>

const labels = (pairs: Labels): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${labelName(k)}="${labelValue(v)}"`).join(",")}}`

interface Family {
  type: "counter" | "gauge" | "histogram" | "summary"
  help: string | undefined
  readonly lines: Array<string>
}

/**
 * Renders metric pairs (as `Metric.snapshot` gives them) in the exposition format: one family per
 * metric name with its `# HELP` and `# TYPE`, families sorted by name. Counters are named
 * `..._total`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const family = (name: string, type: Family["type"], help: Option.Option<string>): Family => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrUndefined(help), lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const state = pair.metricState
    const name = metricName(key.name)
    const tags: Labels = key.tags.map((tag) => [tag.key, tag.value] as const)
    if (MetricState.isCounterState(state)) {
      const gauge = upAndDown.has(name)
      const series = gauge || name.endsWith("_total") ? name : `${name}_total`
      family(series, gauge ? "gauge" : "counter", key.description).lines.push(
        `${series}${labels(tags)} ${num(state.count)}`
      )
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).lines.push(`${name}${labels(tags)} ${num(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", key.description)
      let sawInfinity = false
      for (const [bound, count] of state.buckets) {
        if (bound === Number.POSITIVE_INFINITY) sawInfinity = true
        f.lines.push(`${name}_bucket${labels([...tags, ["le", num(bound)]])} ${num(count)}`)
      }
      if (!sawInfinity) f.lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${num(state.count)}`)
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${num(state.count)}`)
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", key.description)
      for (const [quantile, value] of state.quantiles) {
        f.lines.push(
          `${name}${labels([...tags, ["quantile", num(quantile)]])} ${num(Option.getOrElse(value, () => Number.NaN))}`
        )
      }
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${num(state.count)}`)
    } else if (MetricState.isFrequencyState(state)) {
      // a frequency counts occurrences of each value: a counter family labelled by the value
      const series = name.endsWith("_total") ? name : `${name}_total`
      const f = family(series, "counter", key.description)
      for (const [value, count] of state.occurrences) {
        f.lines.push(`${series}${labels([...tags, ["value", value]])} ${num(count)}`)
      }
    }
  }
  const out: Array<string> = []
  for (const name of Array.from(families.keys()).sort()) {
    const f = families.get(name)!
    out.push(`# HELP ${name} ${helpText(f.help ?? `Effect metric ${name}`)}`)
    out.push(`# TYPE ${name} ${f.type}`)
    for (const line of f.lines) out.push(line)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}

/**
 * The whole metric registry of this process, rendered.
 *
 * @since 0.1.0
 * @category rendering
 */
export const snapshot: Effect.Effect<string> = Effect.map(Metric.snapshot, render)
