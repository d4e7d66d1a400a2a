/**
 * A lint of the Prometheus text exposition format, after `promtool check metrics` (the rules of
 * Prometheus's promlint that apply to a text page), for machines without promtool: each finding
 * is a line naming the metric and the rule.
 */

const abbreviations = new Set(["ms", "msec", "msecs", "sec", "secs", "us", "usec", "ns", "min", "mins", "hr", "hrs", "kb", "mb", "gb"])
const nonBaseUnits: Record<string, string> = {
  milliseconds: "seconds",
  microseconds: "seconds",
  nanoseconds: "seconds",
  minutes: "seconds",
  hours: "seconds",
  days: "seconds",
  kilobytes: "bytes",
  megabytes: "bytes",
  gigabytes: "bytes"
}

interface Family {
  type: string | undefined
  help: boolean
  readonly samples: Array<{ readonly suffix: string; readonly labels: string }>
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/

export const lint = (text: string): ReadonlyArray<string> => {
  const findings: Array<string> = []
  const families = new Map<string, Family>()
  const familyOf = (name: string): Family => {
    let family = families.get(name)
    if (family === undefined) {
      family = { type: undefined, help: false, samples: [] }
      families.set(name, family)
    }
    return family
  }
  if (text.length > 0 && !text.endsWith("\n")) findings.push("the text does not end with a newline")
  for (const line of text.split("\n")) {
    if (line === "") continue
    const comment = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/)
    if (comment !== null) {
      const family = familyOf(comment[2]!)
      if (comment[1] === "HELP") family.help = comment[3]!.trim().length > 0
      else {
        if (family.samples.length > 0) findings.push(`${comment[2]}: TYPE after its samples`)
        family.type = comment[3]
      }
      continue
    }
    if (line.startsWith("#")) continue
    const sample = line.match(sampleLine)
    if (sample === null) {
      findings.push(`not a sample line: ${line}`)
      continue
    }
    const name = sample[1]!
    const base = [...families.keys()].find((f) =>
      name === f || (["_bucket", "_sum", "_count"].some((s) => name === f + s) && families.get(f)!.type !== "counter")
    )
    if (base === undefined) {
      findings.push(`${name}: a sample without a TYPE line before it`)
      continue
    }
    const value = sample[4]!
    if (!/^([+-]?Inf|NaN|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(value)) findings.push(`${name}: value ${value} is not a number`)
    familyOf(base).samples.push({ suffix: name.slice(base.length), labels: sample[3] ?? "" })
  }
  for (const [name, family] of families) {
    if (!family.help) findings.push(`${name}: no help text`)
    if (family.type === undefined) findings.push(`${name}: no TYPE`)
    if (family.type === "counter" && !name.endsWith("_total")) findings.push(`${name}: counter metrics should have "_total" suffix`)
    if (family.type !== "counter" && name.endsWith("_total")) findings.push(`${name}: non-counter metrics should not have "_total" suffix`)
    if (name.includes(":")) findings.push(`${name}: metric names should not contain ':'`)
    if (/[A-Z]/.test(name)) findings.push(`${name}: metric names should be written in 'snake_case' not 'camelCase'`)
    for (const part of name.split("_")) {
      if (abbreviations.has(part)) findings.push(`${name}: metric names should not contain abbreviated units`)
      const base = nonBaseUnits[part]
      if (base !== undefined) findings.push(`${name}: use base unit "${base}" instead of "${part}"`)
    }
    for (const sample of family.samples) {
      for (const label of sample.labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
        if (/[A-Z]/.test(label[1]!)) findings.push(`${name}: label names should be written in 'snake_case' not 'camelCase'`)
        if (label[1] === "le" && family.type !== "histogram") findings.push(`${name}: non-histogram metrics should not have "le" label`)
        if (label[1] === "quantile" && family.type !== "summary") findings.push(`${name}: non-summary metrics should not have "quantile" label`)
      }
    }
    if (family.type === "histogram") {
      const suffixes = new Set(family.samples.map((s) => s.suffix))
      for (const suffix of ["_bucket", "_sum", "_count"]) {
        if (!suffixes.has(suffix)) findings.push(`${name}: histogram without ${suffix}`)
      }
      if (!family.samples.some((s) => s.suffix === "_bucket" && s.labels.includes("le=\"+Inf\""))) {
        findings.push(`${name}: histogram without a +Inf bucket`)
      }
    }
  }
  return findings
}
