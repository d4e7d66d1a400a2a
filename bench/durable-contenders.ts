/**
 * The durable section's contenders: effect-tasks on its PostgreSQL store, graphile-worker and
 * pg-boss, each in two modes (its defaults, and its documented tuning). Each contender has a
 * producer side (run by the parent, `durable.ts`) and a worker side (run in a child process,
 * `durable-worker.ts`), both bound to one schema of their own.
 *
 * Every task is a no-op whose payload is `{ at }`: 0 for the throughput runs, the producer's wall
 * clock (ms, `wallClock()`) at submit for the latency runs.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ManagedRuntime, Redacted, Schema } from "effect"
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker"
import PgBoss from "pg-boss"
import { Task, TaskEngine, TaskStore } from "../src/index.js"
import type { PgTaskStoreOptions } from "../src/layers/PgTaskStore.js"

export type ContenderName = "effect-tasks" | "graphile-worker" | "pg-boss"
export type Mode = "defaults" | "tuned"

export const CONCURRENCY = 10

/**
 * effect-tasks' tuned store options (over `{ schema }`): claims take 64 tasks ahead of demand,
 * and settlements do not wait for the WAL flush (see `SqlTaskStoreOptions`). Change here.
 */
export const EFFECT_TASKS_TUNED: PgTaskStoreOptions = { prefetch: 500, synchronousSettle: false }

/**
 * graphile-worker's tuned options, from its performance page ("Batching"): a local queue that
 * fetches (and locks) jobs in batches, and completions (and failures) batched with no added delay.
 * The page's own benchmark preset uses `localQueue: { size: 500 }` with both delays at 0.
 */
export const GRAPHILE_TUNED = {
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0
} as const

/**
 * pg-boss 10 has no concurrency setting: each `work()` call is one polling worker, fetching
 * `batchSize` jobs per poll, at most every `pollingIntervalSeconds` (default 2 s, least 0.5 s),
 * and it learns of no new job but by polling (a worker that got jobs still waits out the rest of
 * its interval). Concurrency 10 is 10 `work()` calls. Tuned: the least polling interval and
 * batches of jobs per fetch, handed to the handler together and completed in one statement.
 * Its throughput is then bounded by 10 x batchSize per 0.5 s: 250 allows 5,000/s, about the
 * 4,600/s the issue measured for pg-boss tuned; much larger batches stop being concurrency 10
 * (at 2,000, one round of polls takes the whole 20,000-task backlog at once).
 */
export const PG_BOSS_TUNED = { pollingIntervalSeconds: 0.5, batchSize: 250 } as const

const QUEUE = "noop"

/** Milliseconds since the epoch, sub-millisecond: the same clock in every process. */
export const wallClock = (): number => performance.timeOrigin + performance.now()

// -- producers (the parent) ----------------------------------------------------------------------

export interface Producer {
  /** Adds one task (awaited: stored when it resolves). */
  readonly addOne: (at: number) => Promise<void>
  /** Adds `count` tasks in one call: graphile-worker `addJobs`, pg-boss `insert`, effect-tasks `submitMany`. */
  readonly addMany: (count: number) => Promise<void>
  /** How many of the schema's tasks have completed, read from the database. */
  readonly completed: () => Promise<number>
  readonly close: () => Promise<void>
}

/** A `PgClient` runtime for plain SQL (counts, drops) on the benchmark's database. */
export const sqlRuntime = (url: string) =>
  ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }))

export type SqlRuntime = ReturnType<typeof sqlRuntime>

export const query = (sql: SqlRuntime, text: string, params: ReadonlyArray<unknown> = []) =>
  sql.runPromise(Effect.flatMap(PgClient.PgClient, (client) => client.unsafe<Record<string, unknown>>(text, params)))

const countOf = async (sql: SqlRuntime, text: string, params: ReadonlyArray<unknown> = []): Promise<number> => {
  const rows = await query(sql, text, params)
  return Number(rows[0]?.n ?? 0)
}

/**
 * `ANALYZE`s every table of the schema: fresh tables just filled have no statistics until
 * autovacuum gets to them (up to a minute later), and a plan made without them can be slower by
 * orders of magnitude, at random between runs. A running system has them.
 */
export const analyzeSchema = async (sql: SqlRuntime, schema: string): Promise<void> => {
  const tables = await query(sql, "SELECT tablename FROM pg_tables WHERE schemaname = $1", [schema])
  for (const { tablename } of tables) await query(sql, `ANALYZE "${schema}"."${String(tablename)}"`)
}

export const dropSchema = (sql: SqlRuntime, schema: string) => query(sql, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`)

export const Noop = Task.make("noop", { payload: Schema.Struct({ at: Schema.Number }) })

const effectTasksProducer = async (url: string, schema: string, sql: SqlRuntime): Promise<Producer> => {
  // a producer-only engine: it knows the definition and runs nothing (no handler registered)
  const runtime = ManagedRuntime.make(
    TaskEngine.layer({ definitions: [Noop], cleanup: false }).pipe(
      Layer.provide(TaskStore.layerPostgres({ schema })),
      Layer.provide(PgClient.layer({ url: Redacted.make(url) }))
    )
  )
  const engine = await runtime.runPromise(TaskEngine.TaskEngine)
  const zeros = (count: number) => Array.from({ length: count }, () => ({ at: 0 }))
  return {
    addOne: (at) => runtime.runPromise(Effect.asVoid(engine.submit(Noop, { at }))),
    addMany: (count) => runtime.runPromise(Effect.asVoid(engine.submitMany(Noop, zeros(count)))),
    completed: () => countOf(sql, `SELECT count(*)::int AS n FROM "${schema}".task_status WHERE status = 'completed'`),
    close: () => runtime.dispose()
  }
}

const silent = new Logger(() => () => {})

const graphileProducer = async (url: string, schema: string, sql: SqlRuntime, total: () => number): Promise<Producer> => {
  await runMigrations({ connectionString: url, schema, logger: silent })
  const utils = await makeWorkerUtils({ connectionString: url, schema, logger: silent })
  return {
    addOne: async (at) => {
      await utils.addJob(QUEUE, { at })
    },
    addMany: async (count) => {
      await utils.addJobs(Array.from({ length: count }, () => ({ identifier: QUEUE, payload: { at: 0 } })))
    },
    // a completed job is deleted; a failed one stays (with its error) until it runs out of attempts
    completed: async () => total() - (await countOf(sql, `SELECT count(*)::int AS n FROM "${schema}"._private_jobs`)),
    close: async () => {
      await utils.release()
    }
  }
}

const pgBossProducer = async (url: string, schema: string, sql: SqlRuntime): Promise<Producer> => {
  // a client only: no maintenance or cron fibers in the producer
  const boss = new PgBoss({ connectionString: url, schema, supervise: false, schedule: false, max: 2 })
  boss.on("error", (error) => process.stderr.write(`pg-boss producer: ${String(error)}\n`))
  await boss.start()
  await boss.createQueue(QUEUE)
  return {
    addOne: async (at) => {
      await boss.send(QUEUE, { at })
    },
    addMany: async (count) => {
      await boss.insert(Array.from({ length: count }, () => ({ name: QUEUE, data: { at: 0 } })))
    },
    completed: () =>
      countOf(sql, `SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state = 'completed'`, [QUEUE]),
    close: () => boss.stop({ graceful: false, wait: true })
  }
}

/** The producer of a contender on a fresh schema (created here); `total` counts the tasks added. */
export const producer = (
  contender: ContenderName,
  url: string,
  schema: string,
  sql: SqlRuntime,
  total: () => number
): Promise<Producer> => {
  switch (contender) {
    case "effect-tasks":
      return effectTasksProducer(url, schema, sql)
    case "graphile-worker":
      return graphileProducer(url, schema, sql, total)
    case "pg-boss":
      return pgBossProducer(url, schema, sql)
  }
}

// -- workers (the child) -------------------------------------------------------------------------

/** Called at the start of each task with its payload's `at`. */
export type OnTask = (at: number) => void

export interface Worker {
  readonly stop: () => Promise<void>
}

const effectTasksWorker = async (url: string, schema: string, mode: Mode, onTask: OnTask): Promise<Worker> => {
  const store = mode === "tuned" ? { schema, ...EFFECT_TASKS_TUNED } : { schema }
  const runtime = ManagedRuntime.make(
    Noop.toLayer(({ at }) => Effect.sync(() => onTask(at))).pipe(
      Layer.provideMerge(TaskEngine.layer({ maxConcurrent: CONCURRENCY, cleanup: false })),
      Layer.provide(TaskStore.layerPostgres(store)),
      Layer.provide(PgClient.layer({ url: Redacted.make(url) }))
    )
  )
  await runtime.runPromise(TaskEngine.TaskEngine)
  return { stop: () => runtime.dispose() }
}

const graphileWorker = async (url: string, schema: string, mode: Mode, onTask: OnTask): Promise<Worker> => {
  const runner = await run({
    noHandleSignals: true,
    taskList: {
      [QUEUE]: async (payload) => {
        onTask((payload as { readonly at: number }).at)
      }
    },
    preset: {
      worker: {
        connectionString: url,
        schema,
        concurrentJobs: CONCURRENCY,
        logger: silent,
        ...(mode === "tuned" ? GRAPHILE_TUNED : {})
      }
    }
  })
  return { stop: () => runner.stop() }
}

const pgBossWorker = async (url: string, schema: string, mode: Mode, onTask: OnTask): Promise<Worker> => {
  const boss = new PgBoss({ connectionString: url, schema })
  boss.on("error", (error) => process.stderr.write(`pg-boss worker: ${String(error)}\n`))
  await boss.start()
  const options = mode === "tuned" ? PG_BOSS_TUNED : {}
  for (let k = 0; k < CONCURRENCY; k++) {
    await boss.work<{ readonly at: number }>(QUEUE, options, async (jobs) => {
      for (const job of jobs) onTask(job.data.at)
    })
  }
  return { stop: () => boss.stop({ graceful: true, wait: true, timeout: 5_000 }) }
}

/** Starts a contender's worker (one process, concurrency 10) on a schema the producer created. */
export const worker = (
  contender: ContenderName,
  url: string,
  schema: string,
  mode: Mode,
  onTask: OnTask
): Promise<Worker> => {
  switch (contender) {
    case "effect-tasks":
      return effectTasksWorker(url, schema, mode, onTask)
    case "graphile-worker":
      return graphileWorker(url, schema, mode, onTask)
    case "pg-boss":
      return pgBossWorker(url, schema, mode, onTask)
  }
}

/** The settings of each mode, in words, for the table's notes and the JSON. */
export const settingsOf = (contender: ContenderName, mode: Mode): string => {
  switch (contender) {
    case "effect-tasks":
      return mode === "defaults"
        ? `TaskEngine maxConcurrent ${CONCURRENCY}, layerPostgres({ schema })`
        : `TaskEngine maxConcurrent ${CONCURRENCY}, layerPostgres(${JSON.stringify({ schema: "…", ...EFFECT_TASKS_TUNED })})`
    case "graphile-worker":
      return mode === "defaults"
        ? `concurrentJobs ${CONCURRENCY}, no local queue, completions one by one`
        : `concurrentJobs ${CONCURRENCY}, ${JSON.stringify(GRAPHILE_TUNED)}`
    case "pg-boss":
      return mode === "defaults"
        ? `${CONCURRENCY} work() workers, batchSize 1, polling every 2 s`
        : `${CONCURRENCY} work() workers, ${JSON.stringify(PG_BOSS_TUNED)}`
  }
}
