/**
 * The demo's closing report: a table of every task (name, id, status, attempts, progress,
 * outcome), the engine's metrics snapshot per task name, the error log, and the checks. It says
 * which tasks did not end as expected; the demo's exit code follows from that.
 *
 * @since 0.1.0
 */
import { Console, Effect } from "effect"
import type { ErrorReporter, TaskMetrics, TaskRecord } from "../../src/index.js"
import { labelOf } from "./Tasks.js"
import type { Outcome } from "./Scenario.js"

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)))
  const format = (row: ReadonlyArray<string>) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()
  return [format(header), widths.map((w) => "─".repeat(w)).join("  "), ...rows.map(format)].join("\n")
}

const clip = (text: string, width: number): string => (text.length > width ? text.slice(0, width - 1) + "…" : text)

const outcomeOf = (record: TaskRecord.TaskRecord): string =>
  record.status === "completed"
    ? JSON.stringify(record.result) ?? ""
    : record.error !== null
    ? `${record.error.tag}: ${record.error.message}`
    : ""

/** What did not go as expected for one task, if anything. */
const problemOf = (outcome: Outcome, record: TaskRecord.TaskRecord): string | undefined => {
  const expected = outcome.expected.find((task) => task.id === record.id)
  if (expected === undefined) return undefined
  const found = `${record.status}, ${record.attempt} attempt(s)${record.error ? `, ${record.error.tag}` : ""}`
  const wanted = `${expected.status}, ${expected.attempts} attempt(s)${expected.error ? `, ${expected.error}` : ""}`
  return found === wanted ? undefined : `expected ${wanted}; got ${found}`
}

const ms = (millis: number): string => (Number.isFinite(millis) ? `${Math.round(millis)}` : "-")

/**
 * Prints the report; returns the problems found (none when every task ended as expected).
 *
 * @since 0.1.0
 * @category report
 */
export const print = (
  outcome: Outcome,
  metrics: TaskMetrics.MetricsSnapshot,
  reports: ReadonlyArray<ErrorReporter.ErrorReport>
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const rows = outcome.records.map((record) => {
      const problem = problemOf(outcome, record)
      if (problem !== undefined) problems.push(`${record.name} ${record.id} (${labelOf(record)}): ${problem}`)
      return [
        problem === undefined ? "✓" : "✗",
        record.name,
        clip(labelOf(record), 30),
        record.id,
        record.status + (outcome.deleted.has(record.id) ? " (cleaned up)" : ""),
        String(record.attempt),
        `${Math.round(record.progress)}%`,
        clip(outcomeOf(record), 60)
      ]
    })
    for (const task of outcome.expected) {
      if (!outcome.records.some((record) => record.id === task.id)) problems.push(`${task.id}: no record found`)
    }
    yield* Console.log(`\nTasks\n${table(["", "task", "label", "id", "status", "attempts", "progress", "outcome"], rows)}`)

    const counts = (name: string, c: TaskMetrics.TaskCounts) => [
      name,
      ...[c.submitted, c.started, c.completed, c.failed, c.retried, c.timedOut, c.cancelled].map(String),
      String(c.duration.count),
      ms(c.duration.count > 0 ? c.duration.totalMillis / c.duration.count : Number.NaN),
      ms(c.duration.count > 0 ? c.duration.minMillis : Number.NaN),
      ms(c.duration.count > 0 ? c.duration.maxMillis : Number.NaN)
    ]
    const metricRows = [
      ...Object.entries(metrics.tasks).map(([name, c]) => counts(name, c)),
      counts("total", metrics.total)
    ]
    yield* Console.log(
      `\nMetrics (engine.metrics at ${metrics.timestamp.toISOString()}; durations per attempt, ms)\n${
        table(
          [
            "task",
            "submitted",
            "started",
            "completed",
            "failed",
            "retried",
            "timedOut",
            "cancelled",
            "attempts",
            "avg",
            "min",
            "max"
          ],
          metricRows
        )
      }`
    )

    yield* Console.log(
      `\nError reports (ErrorReporter, final failures)\n${
        table(
          ["task", "id", "attempt", "error"],
          reports.map((report) => [
            report.context.task,
            report.taskId,
            String(report.context.attempt),
            clip(report.error, 80)
          ])
        )
      }`
    )

    for (const check of outcome.checks) {
      if (!check.ok) problems.push(`${check.name}: ${check.detail}`)
    }
    yield* Console.log(`\nChecks\n${outcome.checks.map((check) => `${check.ok ? "✓" : "✗"} ${check.name}: ${check.detail}`).join("\n")}`)
    if (problems.length === 0) yield* Console.log("\nEvery task ended as expected.")
    return problems
  })
