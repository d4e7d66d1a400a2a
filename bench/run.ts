/**
 * `npm run bench`: two sections, run one after the other; prints tables and writes
 * `bench/results.json`. `npm run bench -- in-memory` or `npm run bench -- durable` (or
 * `BENCH_SECTION=in-memory|durable`) runs one of them, keeping the other's figures in the JSON.
 *
 * - in-memory (below): effect-tasks against the guide's own design, p-queue 9 and plain
 *   `Effect.forEach`, in one process run;
 * - durable (`durable.ts`, its method at its top; figures under the JSON's `durable` key):
 *   effect-tasks on PostgreSQL beside graphile-worker and pg-boss on the same database
 *   (`DATABASE_URL`, or an embedded server), one worker process each at concurrency 10.
 *
 * The in-memory section:
 * - throughput: 100,000 no-op tasks at concurrency 5 and 100, from the first submit until every
 *   task completed (each contender checks that all of them did);
 * - I/O: 100,000 tasks that each wait 1 ms on a timer, at concurrency 100, as a share of the ideal
 *   100,000 tasks/s;
 * - memory: heap bytes per queued task with 200,000 tasks waiting (child processes, `--expose-gc`).
 *
 * Method: every contender is warmed up once (a smaller run) per workload and concurrency, then
 * measured `ROUNDS` times, the contenders interleaved within each round; the median run is
 * reported (the best is in the JSON). CPU time per task (`process.cpuUsage` over the same window
 * as the wall time; it includes GC helper threads) is reported beside it: it is less sensitive to
 * other processes on a shared machine. A full GC runs before each measured run.
 *
 * The guide's design waits by polling every 100 ms; where 100,000 tasks would take minutes, it runs
 * fewer tasks (marked `*`) and its rate is compared as is.
 *
 * Environment: `BENCH_TASKS` (100000), `BENCH_ROUNDS` (3), `BENCH_GUIDE_IO_TASKS` (5000); the durable
 * section's are listed in `durable.ts`.
 */
import { spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import type { Contender, Workload } from "./contenders.js"
import { effectForEach, effectTasks, guide, pQueue } from "./contenders.js"
import { printDurable, runDurable } from "./durable.js"
import { envInt } from "./env.js"
import type { MemoryResult } from "./memory.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..")

const TASKS = envInt("BENCH_TASKS", 100_000)
const ROUNDS = envInt("BENCH_ROUNDS", 3)
const GUIDE_IO_TASKS = Math.min(TASKS, envInt("BENCH_GUIDE_IO_TASKS", 5_000))
const WARMUP_TASKS = Math.min(TASKS, 10_000)
const MEMORY_TASKS = 200_000

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

// -- one scenario: a workload at a concurrency, several contenders -----------------------------

interface Entry {
  readonly name: string
  readonly contender: Contender
  /** How many tasks this contender runs here (fewer for the slow polling design). */
  readonly tasks: number
}

interface Measured {
  readonly name: string
  readonly tasks: number
  readonly reduced: boolean
  /** Median run. */
  readonly tasksPerSecond: number
  readonly bestTasksPerSecond: number
  readonly cpuMicrosPerTask: number
  readonly runsMillis: ReadonlyArray<number>
}

interface Scenario {
  readonly workload: Workload
  readonly concurrency: number
  readonly results: ReadonlyArray<Measured>
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const scenario = async (workload: Workload, concurrency: number, entries: ReadonlyArray<Entry>): Promise<Scenario> => {
  process.stderr.write(`${workload} @ ${concurrency}: warm-up`)
  for (const entry of entries) {
    await entry.contender(workload, Math.min(entry.tasks, WARMUP_TASKS), concurrency)
  }
  const millis = entries.map((): Array<number> => [])
  const cpu = entries.map((): Array<number> => [])
  for (let round = 0; round < ROUNDS; round++) {
    process.stderr.write(`, round ${round + 1}`)
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k]!
      gc()
      const run = await entry.contender(workload, entry.tasks, concurrency)
      millis[k]!.push(run.millis)
      cpu[k]!.push(run.cpuMicros / run.tasks)
    }
  }
  process.stderr.write("\n")
  const results = entries.map((entry, k): Measured => ({
    name: entry.name,
    tasks: entry.tasks,
    reduced: entry.tasks < TASKS,
    tasksPerSecond: entry.tasks / (median(millis[k]!) / 1000),
    bestTasksPerSecond: entry.tasks / (Math.min(...millis[k]!) / 1000),
    cpuMicrosPerTask: median(cpu[k]!),
    runsMillis: millis[k]!.map((m) => Math.round(m))
  }))
  return { workload, concurrency, results }
}

// -- output ------------------------------------------------------------------------------------

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US")
const pad = (s: string, width: number): string => s.padEnd(width)
const lpad = (s: string, width: number): string => s.padStart(width)

const printScenario = (s: Scenario): void => {
  const ideal = s.workload === "io" ? s.concurrency * 1000 : undefined
  const header = `${s.workload === "noop" ? "no-op tasks" : "1 ms I/O tasks"}, concurrency ${s.concurrency}`
  console.log(`\n${header}${ideal === undefined ? "" : ` (ideal ${fmt(ideal)} tasks/s)`}`)
  console.log(
    `  ${pad("contender", 48)}${lpad("tasks", 9)}${lpad("tasks/s", 11)}${lpad("cpu us/task", 13)}${
      ideal === undefined ? "" : lpad("of ideal", 10)
    }`
  )
  for (const r of s.results) {
    console.log(
      `  ${pad(r.name, 48)}${lpad(`${fmt(r.tasks)}${r.reduced ? "*" : ""}`, 9)}${lpad(fmt(r.tasksPerSecond), 11)}${
        lpad(r.cpuMicrosPerTask.toFixed(1), 13)
      }${ideal === undefined ? "" : lpad(`${((r.tasksPerSecond / ideal) * 100).toFixed(1)}%`, 10)}`
    )
  }
}

interface Ratio {
  readonly scenario: string
  readonly versus: string
  /** effect-tasks tasks/s over the peer's (wall time). */
  readonly ratio: number
  /** The peer's CPU time per task over effect-tasks' (the same ratio in CPU time). */
  readonly cpuRatio: number
}

const ratiosOf = (s: Scenario): Array<Ratio> => {
  const ours = s.results.find((r) => r.name === "effect-tasks")
  if (ours === undefined) return []
  return s.results
    .filter((r) => r !== ours)
    .map((r) => ({
      scenario: `${s.workload} @ ${s.concurrency}`,
      versus: r.name,
      ratio: ours.tasksPerSecond / r.tasksPerSecond,
      cpuRatio: r.cpuMicrosPerTask / ours.cpuMicrosPerTask
    }))
}

// -- main --------------------------------------------------------------------------------------

const memory = (contender: string): MemoryResult => {
  const child = spawnSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", join(here, "memory.ts"), contender, String(MEMORY_TASKS)],
    { cwd: root, encoding: "utf8", timeout: 120_000 }
  )
  if (child.status !== 0) throw new Error(`memory ${contender} failed: ${child.stderr}`)
  const line = child.stdout.trim().split("\n").pop() ?? ""
  return JSON.parse(line) as MemoryResult
}

const inMemorySection = async (): Promise<Record<string, unknown>> => {
  const started = performance.now()
  const entries = (guideTasks: number): Array<Entry> => [
    { name: "effect-tasks", contender: effectTasks, tasks: TASKS },
    { name: "guide's design (TaskQueue + ResourceAwareTask)", contender: guide, tasks: guideTasks },
    { name: "p-queue", contender: pQueue, tasks: TASKS },
    { name: "Effect.forEach", contender: effectForEach, tasks: TASKS }
  ]

  const scenarios: Array<Scenario> = []
  for (const concurrency of [5, 100]) scenarios.push(await scenario("noop", concurrency, entries(TASKS)))
  // the guide's poller admits about MAX_CONCURRENT tasks per 100 ms tick when tasks take 1 ms
  scenarios.push(await scenario("io", 100, entries(GUIDE_IO_TASKS)))

  process.stderr.write("memory: effect-tasks, p-queue, guide\n")
  const memoryResults = ["effect-tasks", "p-queue", "guide"].map(memory)

  console.log(`effect-tasks benchmark: ${fmt(TASKS)} tasks, median of ${ROUNDS} runs after a warm-up, Node ${process.version}`)
  console.log(`(* fewer tasks: the guide's polling design is too slow for ${fmt(TASKS)} here; rates still compare)`)
  for (const s of scenarios) printScenario(s)

  const ratios = scenarios.flatMap(ratiosOf)
  console.log("\neffect-tasks throughput over the peer's (median runs): by wall time, and by CPU time per task")
  for (const r of ratios) {
    console.log(
      `  ${pad(r.scenario, 10)} vs ${pad(r.versus, 50)}${lpad(`${r.ratio.toFixed(2)}x`, 8)}${lpad(`${r.cpuRatio.toFixed(2)}x`, 8)}`
    )
  }

  console.log(`\nheap per queued task (${fmt(MEMORY_TASKS)} tasks waiting, after full GCs)`)
  for (const m of memoryResults) console.log(`  ${pad(m.contender, 16)}${lpad(fmt(m.bytesPerTask), 8)} bytes`)

  const seconds = (performance.now() - started) / 1000
  console.log(`\nin-memory section ${seconds.toFixed(0)} s`)

  return {
    date: new Date().toISOString(),
    node: process.version,
    tasks: TASKS,
    rounds: ROUNDS,
    statistic: "median of rounds (best also given)",
    scenarios,
    ratios,
    memory: memoryResults,
    seconds
  }
}

// -- sections ----------------------------------------------------------------------------------

const section = process.argv[2] ?? process.env.BENCH_SECTION ?? "all"
if (!["all", "in-memory", "durable"].includes(section)) {
  throw new Error(`unknown section ${section}: give all, in-memory or durable`)
}
const resultsFile = join(here, "results.json")
const previous: Record<string, unknown> = (() => {
  try {
    return JSON.parse(readFileSync(resultsFile, "utf8")) as Record<string, unknown>
  } catch {
    return {}
  }
})()

// each section replaces its own part of results.json and keeps the other's
let results: Record<string, unknown> = previous
if (section !== "durable") {
  results = { ...(await inMemorySection()), ...(previous.durable === undefined ? {} : { durable: previous.durable }) }
}
if (section !== "in-memory") {
  const durable = await runDurable()
  printDurable(durable)
  console.log(`\ndurable section ${durable.seconds.toFixed(0)} s`)
  results = { ...results, durable }
}

writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`)
