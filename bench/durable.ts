/**
 * The durable section of `npm run bench`: effect-tasks on PostgreSQL beside graphile-worker and
 * pg-boss, measured in one run on the same PostgreSQL: `DATABASE_URL` if set, otherwise an
 * embedded server started for the run (`src/layers/EmbeddedPostgres.ts`, default settings).
 *
 * Each contender runs twice, at its defaults and with its documented tuning (the settings are in
 * `durable-contenders.ts`), always with one worker process at concurrency 10. Every
 * contender-mode gets a fresh schema for the throughput runs and another for the latency run,
 * dropped after. No-op tasks.
 *
 * Method, for each contender-mode:
 * - enqueue one by one: 2,000 single adds (graphile-worker `addJob`, pg-boss `send`,
 *   effect-tasks `submit` through a producer-only engine), each awaited before the next, from
 *   this (the parent) process;
 * - enqueue batched: the remaining 18,000 of the 20,000 in calls of 1,000 (`addJobs`, `insert`,
 *   `submitMany`), awaited one after the other;
 * - processing: with those 20,000 tasks queued, a worker process is forked
 *   (`durable-worker.ts`, run with tsx) and started; the time runs from the first task's start
 *   (stamped in the worker) until this process sees all 20,000 completed in the database
 *   (effect-tasks: `status = 'completed'` rows of `task_status`; pg-boss: `state = 'completed'`
 *   jobs; graphile-worker deletes a completed job: no job row left). Worker start-up (imports,
 *   connections, migrations check) is not timed, nor is an `ANALYZE` of the schema's tables
 *   before it starts (as autovacuum would have done in a running system). Bounded: a worker not done after 10 s is
 *   measured by what it completed by then (marked `*`);
 * - submit-to-start latency, after every throughput run, in two passes of 500 tasks: every
 *   contender-mode in turn, then again in the reverse order (so that the machine's drift over
 *   the run, about a millisecond of p50 here, weighs on each alike). A pass: on a fresh schema,
 *   a worker process idles; this process adds 20 warm-up tasks, then the pass's tasks one by one
 *   at about 200/s (every 5 ms on a fixed schedule),
 *   each payload stamped with the wall clock just before its add; the worker records its own wall
 *   clock minus the stamp when the task starts. Producer and worker are different processes, so
 *   the clocks are `performance.timeOrigin + performance.now()` in each, and the offset between
 *   the two processes' clocks (measured over IPC, least round trip of 10) is taken off (it is
 *   reported; it is a few microseconds). A task not started 5 s after the last add counts as never
 *   started (its latency is infinite): p50 and p99 are over all 1,000 of both passes.
 *
 * Environment: `DATABASE_URL`; `BENCH_DURABLE_TASKS` (20000), `BENCH_DURABLE_ONE_BY_ONE` (2000),
 * `BENCH_DURABLE_LATENCY_TASKS` (1000), `BENCH_DURABLE_ONLY` (comma-separated contender names).
 */
import { Effect, Redacted } from "effect"
import type { ChildProcess } from "node:child_process"
import { fork } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as EmbeddedPostgres from "../src/layers/EmbeddedPostgres.js"
import type { ContenderName, Mode, Producer, SqlRuntime } from "./durable-contenders.js"
import { analyzeSchema, CONCURRENCY, dropSchema, producer, query, settingsOf, sqlRuntime, wallClock } from "./durable-contenders.js"
import type { FromWorker, ToWorker } from "./durable-worker.js"
import { envInt } from "./env.js"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..")

const TASKS = envInt("BENCH_DURABLE_TASKS", 20_000)
const ONE_BY_ONE = Math.min(TASKS, envInt("BENCH_DURABLE_ONE_BY_ONE", 2_000))
const BATCH = 1_000
const LATENCY_TASKS = envInt("BENCH_DURABLE_LATENCY_TASKS", 1_000)
const LATENCY_SPACING_MS = 5
const WARMUP_TASKS = 20
/** Bounds, so that a slow contender (pg-boss at its defaults) cannot hold the run. */
const ONE_BY_ONE_LIMIT_MS = 5_000
const PROCESSING_LIMIT_MS = 10_000
const LATENCY_GRACE_MS = 3_000
const WARMUP_LIMIT_MS = 5_000

const CONTENDERS: ReadonlyArray<ContenderName> = ["effect-tasks", "graphile-worker", "pg-boss"]
const MODES: ReadonlyArray<Mode> = ["defaults", "tuned"]

// -- results -------------------------------------------------------------------------------------

export interface DurableRow {
  readonly contender: ContenderName
  readonly mode: Mode
  readonly settings: string
  readonly enqueueOneByOne: { readonly tasks: number; readonly perSecond: number }
  readonly enqueueBatched: { readonly tasks: number; readonly batch: number; readonly perSecond: number }
  readonly processing: {
    readonly tasks: number
    readonly completed: number
    readonly millis: number
    readonly perSecond: number
    /** Not all tasks completed within the bound: the rate is of those that did. */
    readonly partial: boolean
  }
  readonly latency: {
    readonly tasks: number
    readonly started: number
    /** Achieved submit rate. */
    readonly submittedPerSecond: number
    readonly p50Millis: number | null
    readonly p99Millis: number | null
    readonly maxMillis: number | null
    /** Worker clock minus producer clock, taken off every latency. */
    readonly clockOffsetMillis: number
  }
}

export interface DurableRatio {
  readonly measure: string
  /** effect-tasks tuned's figure over graphile-worker tuned's. */
  readonly ratio: number
  readonly ours: number
  readonly theirs: number
  /** What the issue asks of the ratio. */
  readonly target: string
}

export interface DurableResults {
  readonly date: string
  readonly node: string
  readonly postgres: string
  readonly database: "DATABASE_URL" | "embedded"
  readonly settings: Readonly<Record<string, string>>
  readonly tasks: number
  readonly concurrency: number
  readonly rows: ReadonlyArray<DurableRow>
  readonly ratios: ReadonlyArray<DurableRatio>
  readonly seconds: number
}

// -- the worker process --------------------------------------------------------------------------

class WorkerProcess {
  private readonly child: ChildProcess
  private readonly inbox: Array<FromWorker> = []
  private waiter: (() => void) | undefined
  private failure: Error | undefined
  private stderr = ""

  constructor(contender: ContenderName, mode: Mode, schema: string, url: string) {
    this.child = fork(join(here, "durable-worker.ts"), [contender, mode, schema], {
      cwd: root,
      execArgv: ["--import", "tsx"],
      env: { ...process.env, BENCH_DATABASE_URL: url },
      stdio: ["ignore", "inherit", "pipe", "ipc"]
    })
    this.child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4_000)
    })
    this.child.on("message", (message: FromWorker) => {
      if (message.type === "error") this.failure = new Error(`worker: ${message.message}`)
      else this.inbox.push(message)
      this.waiter?.()
    })
    this.child.on("exit", (code, signal) => {
      this.failure ??= new Error(`worker exited (${code ?? signal}): ${this.stderr}`)
      this.waiter?.()
    })
  }

  send(message: ToWorker): void {
    this.child.send(message)
  }

  /** The next message of that type, or `undefined` after `timeoutMs`. */
  async next<T extends FromWorker["type"]>(
    type: T,
    timeoutMs: number
  ): Promise<Extract<FromWorker, { type: T }> | undefined> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const index = this.inbox.findIndex((m) => m.type === type)
      if (index >= 0) return this.inbox.splice(index, 1)[0] as Extract<FromWorker, { type: T }>
      if (this.failure !== undefined) throw this.failure
      const left = deadline - performance.now()
      if (left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.waiter = undefined
    }
  }

  async must<T extends FromWorker["type"]>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    const message = await this.next(type, timeoutMs)
    if (message === undefined) throw new Error(`worker: no ${type} within ${timeoutMs} ms\n${this.stderr}`)
    return message
  }

  /** Loaded, then started; returns the worker clock's offset from ours. */
  async start(): Promise<number> {
    await this.must("pong", 30_000)
    let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 }
    for (let k = 0; k < 10; k++) {
      const sent = wallClock()
      this.send({ type: "ping", sent })
      const pong = await this.must("pong", 5_000)
      const back = wallClock()
      if (back - sent < best.rtt) best = { rtt: back - sent, offset: pong.child - (sent + back) / 2 }
    }
    this.send({ type: "start" })
    await this.must("started", 30_000)
    return best.offset
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.connected) {
      this.send({ type: "stop" })
      await this.next("stopped", 10_000).catch(() => undefined)
    }
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve()
      else this.child.once("exit", () => resolve())
    })
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000)
    await exited
    clearTimeout(timer)
  }
}

// -- one contender-mode --------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const percentile = (sorted: ReadonlyArray<number>, p: number): number | null => {
  const value = sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
  return value === undefined || !Number.isFinite(value) ? null : value
}

/** The latency figures of several passes together: tasks not started count as infinite. */
const latencyOf = (passes: ReadonlyArray<LatencyPass>): DurableRow["latency"] => {
  const tasks = passes.reduce((sum, pass) => sum + pass.tasks, 0)
  const measured = passes.flatMap((pass) => pass.measured)
  const sorted = [
    ...measured.sort((a, b) => a - b),
    ...Array<number>(Math.max(0, tasks - measured.length)).fill(Number.POSITIVE_INFINITY)
  ]
  return {
    tasks,
    started: measured.length,
    submittedPerSecond: passes.reduce((sum, pass) => sum + pass.submittedPerSecond, 0) / passes.length,
    p50Millis: percentile(sorted, 0.5),
    p99Millis: percentile(sorted, 0.99),
    maxMillis: percentile(sorted, 1),
    clockOffsetMillis: passes.reduce((sum, pass) => sum + pass.clockOffsetMillis, 0) / passes.length
  }
}

const schemaName = (contender: ContenderName, mode: Mode, part: string): string =>
  `bench_${contender.replace(/-.*/, "")}_${mode}_${part}_${process.pid}`

/** Runs `body` with a producer on a fresh schema, dropping the schema after. */
const withSchema = async <A>(
  contender: ContenderName,
  schema: string,
  url: string,
  sql: SqlRuntime,
  body: (producer: Producer, added: { count: number }) => Promise<A>
): Promise<A> => {
  await dropSchema(sql, schema)
  const added = { count: 0 }
  try {
    const p = await producer(contender, url, schema, sql, () => added.count)
    try {
      return await body(p, added)
    } finally {
      await p.close()
    }
  } finally {
    await dropSchema(sql, schema)
  }
}

const throughput = (contender: ContenderName, mode: Mode, url: string, sql: SqlRuntime) =>
  withSchema(contender, schemaName(contender, mode, "tp"), url, sql, async (p, added) => {
    // one by one, awaited serially
    let t0 = performance.now()
    const oneByOneLimit = t0 + ONE_BY_ONE_LIMIT_MS
    while (added.count < ONE_BY_ONE && performance.now() < oneByOneLimit) {
      await p.addOne(0)
      added.count++
    }
    const oneByOne = { tasks: added.count, perSecond: added.count / ((performance.now() - t0) / 1000) }
    // batched, up to TASKS in all
    t0 = performance.now()
    const first = added.count
    while (added.count < TASKS) {
      const count = Math.min(BATCH, TASKS - added.count)
      await p.addMany(count)
      added.count += count
    }
    const batchedTasks = added.count - first
    const batched = { tasks: batchedTasks, batch: BATCH, perSecond: batchedTasks / ((performance.now() - t0) / 1000) }
    await analyzeSchema(sql, schemaName(contender, mode, "tp"))
    // processing by one worker process
    const w = new WorkerProcess(contender, mode, schemaName(contender, mode, "tp"), url)
    try {
      const offset = await w.start()
      const startedAt = performance.now()
      w.send({ type: "expect", count: TASKS })
      let handled = await w.next("handled", PROCESSING_LIMIT_MS)
      let completed = 0
      let done = wallClock()
      if (handled !== undefined) {
        // every task has started: wait for the database to say they all completed
        const limit = startedAt + PROCESSING_LIMIT_MS + 5_000
        for (;;) {
          completed = await p.completed()
          done = wallClock()
          if (completed >= TASKS || performance.now() > limit) break
          await sleep(5)
        }
      } else {
        completed = await p.completed()
        done = wallClock()
        w.send({ type: "expect", count: 0 })
        handled = await w.must("handled", 5_000)
      }
      const millis = done - (handled.firstStart - offset)
      const processing = {
        tasks: TASKS,
        completed,
        millis,
        perSecond: completed / (millis / 1000),
        partial: completed < TASKS
      }
      return { oneByOne, batched, processing }
    } finally {
      await w.stop()
    }
  })

/** One latency pass: `tasks` stamped tasks at about 200/s to an idle worker; the raw latencies. */
interface LatencyPass {
  readonly tasks: number
  readonly measured: ReadonlyArray<number>
  readonly submittedPerSecond: number
  readonly clockOffsetMillis: number
}

const latencyPass = (contender: ContenderName, mode: Mode, url: string, sql: SqlRuntime, tasks: number) =>
  withSchema(contender, schemaName(contender, mode, "lat"), url, sql, async (p): Promise<LatencyPass> => {
    const w = new WorkerProcess(contender, mode, schemaName(contender, mode, "lat"), url)
    try {
      const offset = await w.start()
      await sleep(300)
      // warm-up: not stamped, not measured
      for (let i = 0; i < WARMUP_TASKS; i++) {
        await p.addOne(0)
        await sleep(LATENCY_SPACING_MS)
      }
      w.send({ type: "expect", count: WARMUP_TASKS })
      await w.next("handled", WARMUP_LIMIT_MS)
      await sleep(100)
      w.send({ type: "expect", count: WARMUP_TASKS + tasks })
      const t0 = performance.now()
      for (let i = 0; i < tasks; i++) {
        const wait = t0 + i * LATENCY_SPACING_MS - performance.now()
        if (wait > 0) await sleep(wait)
        await p.addOne(wallClock())
      }
      const submittedPerSecond = tasks / ((performance.now() - t0) / 1000)
      let handled = await w.next("handled", LATENCY_GRACE_MS)
      if (handled === undefined) {
        w.send({ type: "expect", count: 0 })
        handled = await w.must("handled", 5_000)
      }
      return { tasks, measured: handled.latencies.map((l) => l - offset), submittedPerSecond, clockOffsetMillis: offset }
    } finally {
      await w.stop()
    }
  })

// -- output --------------------------------------------------------------------------------------

const fmt = (n: number): string => Math.round(n).toLocaleString("en-US")
const ms = (n: number | null): string => (n === null ? "never" : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : fmt(n))
const pad = (s: string, width: number): string => s.padEnd(width)
const lpad = (s: string, width: number): string => s.padStart(width)

export const printDurable = (results: DurableResults): void => {
  console.log(
    `\ndurable: ${fmt(results.tasks)} no-op tasks, one worker process at concurrency ${results.concurrency}, ` +
      `PostgreSQL ${results.postgres} (${results.database === "embedded" ? "embedded" : "DATABASE_URL"}), Node ${results.node}`
  )
  console.log(
    `  ${pad("contender / mode", 28)}${lpad("enqueue 1x1/s", 15)}${lpad("batched/s", 11)}${lpad("tasks/s", 10)}${
      lpad("p50 ms", 9)
    }${lpad("p99 ms", 9)}`
  )
  for (const r of results.rows) {
    console.log(
      `  ${pad(`${r.contender} ${r.mode}`, 28)}${lpad(fmt(r.enqueueOneByOne.perSecond), 15)}${
        lpad(fmt(r.enqueueBatched.perSecond), 11)
      }${lpad(`${fmt(r.processing.perSecond)}${r.processing.partial ? "*" : ""}`, 10)}${lpad(ms(r.latency.p50Millis), 9)}${
        lpad(ms(r.latency.p99Millis), 9)
      }`
    )
  }
  const partial = results.rows.filter((r) => r.processing.partial)
  for (const r of partial) {
    console.log(
      `  * ${r.contender} ${r.mode}: ${fmt(r.processing.completed)} of ${fmt(r.processing.tasks)} completed in ${
        (r.processing.millis / 1000).toFixed(1)
      } s (bounded)`
    )
  }
  const unstarted = results.rows.filter((r) => r.latency.started < r.latency.tasks)
  for (const r of unstarted) {
    console.log(
      `  ${r.contender} ${r.mode}: ${fmt(r.latency.started)} of ${
        fmt(r.latency.tasks)
      } latency tasks started within ${LATENCY_GRACE_MS / 1000} s of the last add ("never": not started)`
    )
  }
  const oneByOne = Math.min(...results.rows.map((r) => r.enqueueOneByOne.tasks))
  console.log(
    `  (enqueue 1x1: ${fmt(ONE_BY_ONE)} single adds awaited serially${
      oneByOne < ONE_BY_ONE ? ` or as many as ${ONE_BY_ONE_LIMIT_MS / 1000} s allow (fewest here ${fmt(oneByOne)})` : ""
    }; batched: the rest of the ${fmt(TASKS)} in calls of ${fmt(BATCH)}; latency: ${
      fmt(LATENCY_TASKS)
    } tasks at about ${Math.round(1000 / LATENCY_SPACING_MS)}/s, from another process)`
  )
  console.log("  settings:")
  for (const r of results.rows) console.log(`    ${pad(`${r.contender} ${r.mode}`, 26)}${r.settings}`)
  if (results.ratios.length > 0) {
    console.log("\n  effect-tasks tuned vs graphile-worker tuned (local queue, batched completions)")
    for (const r of results.ratios) {
      const value = r.measure.endsWith("ms") ? ms : fmt
      console.log(
        `    ${pad(r.measure, 20)}${lpad(value(r.ours), 9)} vs ${lpad(value(r.theirs), 9)}${
          lpad(`${r.ratio.toFixed(2)}x`, 8)
        }  (target ${r.target})`
      )
    }
  }
}

// -- main ----------------------------------------------------------------------------------------

const only = (process.env.BENCH_DURABLE_ONLY ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")
for (const name of only) {
  if (!(CONTENDERS as ReadonlyArray<string>).includes(name)) throw new Error(`BENCH_DURABLE_ONLY: unknown contender ${name}`)
}

const measureAll = async (url: string, database: DurableResults["database"]): Promise<DurableResults> => {
  const started = performance.now()
  const sql = sqlRuntime(url)
  try {
    const [version] = await query(sql, "SHOW server_version")
    const settings: Record<string, string> = {}
    for (const name of ["fsync", "synchronous_commit", "shared_buffers", "max_connections"]) {
      const [row] = await query(sql, `SHOW ${name}`)
      settings[name] = String(row?.[name] ?? "")
    }
    const runs: Array<{
      readonly contender: ContenderName
      readonly mode: Mode
      readonly tp: Awaited<ReturnType<typeof throughput>>
      readonly passes: Array<LatencyPass>
    }> = []
    for (const contender of CONTENDERS) {
      if (only.length > 0 && !only.includes(contender)) continue
      for (const mode of MODES) {
        process.stderr.write(`durable: ${contender} ${mode}: throughput`)
        const tp = await throughput(contender, mode, url, sql)
        process.stderr.write(` (${fmt(tp.processing.perSecond)}/s)\n`)
        runs.push({ contender, mode, tp, passes: [] })
      }
    }
    // latency in two passes of half the tasks each, the second in the reverse order, so that the
    // machine's drift during the run weighs on every contender alike
    const halves = [Math.ceil(LATENCY_TASKS / 2), Math.floor(LATENCY_TASKS / 2)]
    for (const [k, order] of [runs, [...runs].reverse()].entries()) {
      for (const run of order) {
        process.stderr.write(`durable: ${run.contender} ${run.mode}: latency, pass ${k + 1}`)
        const pass = await latencyPass(run.contender, run.mode, url, sql, halves[k]!)
        const p50 = latencyOf([pass]).p50Millis
        process.stderr.write(` (p50 ${ms(p50)}${p50 === null ? "" : " ms"})\n`)
        run.passes.push(pass)
      }
    }
    const rows: Array<DurableRow> = runs.map(({ contender, mode, passes, tp }) => ({
      contender,
      mode,
      settings: settingsOf(contender, mode),
      enqueueOneByOne: tp.oneByOne,
      enqueueBatched: tp.batched,
      processing: tp.processing,
      latency: latencyOf(passes)
    }))
    const ours = rows.find((r) => r.contender === "effect-tasks" && r.mode === "tuned")
    const theirs = rows.find((r) => r.contender === "graphile-worker" && r.mode === "tuned")
    const ratios: Array<DurableRatio> = []
    if (ours !== undefined && theirs !== undefined) {
      ratios.push({
        measure: "processing tasks/s",
        ratio: ours.processing.perSecond / theirs.processing.perSecond,
        ours: ours.processing.perSecond,
        theirs: theirs.processing.perSecond,
        target: "> 1"
      })
      if (ours.latency.p50Millis !== null && theirs.latency.p50Millis !== null) {
        ratios.push({
          measure: "latency p50 ms",
          ratio: ours.latency.p50Millis / theirs.latency.p50Millis,
          ours: ours.latency.p50Millis,
          theirs: theirs.latency.p50Millis,
          target: "<= 1"
        })
      }
    }
    return {
      date: new Date().toISOString(),
      node: process.version,
      postgres: String(version?.server_version ?? "?"),
      database,
      settings,
      tasks: TASKS,
      concurrency: CONCURRENCY,
      rows,
      ratios,
      seconds: (performance.now() - started) / 1000
    }
  } finally {
    await sql.dispose()
  }
}

/** Measures every contender-mode on `DATABASE_URL`, or on an embedded server started for it. */
export const runDurable = (): Promise<DurableResults> => {
  const url = process.env.DATABASE_URL
  if (url !== undefined && url !== "") return measureAll(url, "DATABASE_URL")
  process.stderr.write("durable: no DATABASE_URL, starting an embedded PostgreSQL\n")
  return Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(
        EmbeddedPostgres.start(),
        (server) => Effect.promise(() => measureAll(Redacted.value(server.url), "embedded"))
      )
    )
  )
}
