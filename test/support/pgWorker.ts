/**
 * A worker process for `PgCrossProcess.test.ts`: an engine on the PostgreSQL store that runs the
 * `Work` task, configured by the environment:
 *
 * - `DATABASE_URL`, `WORKER_SCHEMA` (already migrated by the test), `WORKER_ID`
 * - `WORKER_MAX_CONCURRENT`, `WORKER_LEASE_MS`, `WORKER_HEARTBEAT_MS`, `WORKER_POLL_MS`,
 *   `WORKER_SHUTDOWN_MS`, `WORKER_PREFETCH`, `WORKER_LIFETIME_MS` (exits on its own after it, in case it is orphaned)
 *
 * It prints `__READY__` once its engine is running. SIGTERM (or SIGINT) interrupts the main fiber
 * (`NodeRuntime.runMain`), which closes the engine's scope: its graceful shutdown.
 *
 * Run: `node --import tsx test/support/pgWorker.ts`
 */
import { NodeRuntime } from "@effect/platform-node"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Layer, Schedule } from "effect"
import { TaskEngine } from "../../src/index.js"
import * as PgTaskStore from "../../src/layers/PgTaskStore.js"
import { Work } from "./pgTasks.js"

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback
  if (value === undefined || value === "") throw new Error(`pgWorker: ${name} is not set`)
  return value
}
const millis = (name: string, fallback: number): Duration.Duration =>
  Duration.millis(Number(env(name, String(fallback))))

const schema = env("WORKER_SCHEMA")
const worker = env("WORKER_ID")

// an orphan (its test gone without killing it) does not outlive this
setTimeout(() => process.exit(3), Number(env("WORKER_LIFETIME_MS", "120000"))).unref()

// the inserts are retried for a while: the database may be restarting
const persistently = Schedule.spaced("200 millis").pipe(Schedule.upTo("20 seconds"))

const handler = Work.toLayer(({ ms }, task) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const record = (phase: string) =>
      Effect.retry(
        sql`INSERT INTO ${sql(schema)}.runs (task_id, worker, phase) VALUES (${task.id}, ${worker}, ${phase})`,
        persistently
      )
    yield* record("start")
    yield* Effect.sleep(Duration.millis(ms))
    yield* record("done")
  }).pipe(Effect.orDie)
)

const Main = handler.pipe(
  Layer.provideMerge(TaskEngine.layer({
    instanceId: worker,
    maxConcurrent: Number(env("WORKER_MAX_CONCURRENT", "4")),
    leaseDuration: millis("WORKER_LEASE_MS", 2_000),
    heartbeatInterval: millis("WORKER_HEARTBEAT_MS", 500),
    pollInterval: millis("WORKER_POLL_MS", 200),
    shutdownTimeout: millis("WORKER_SHUTDOWN_MS", 2_000),
    cleanup: false
  })),
  Layer.provideMerge(PgTaskStore.layerPostgresConfig({
    schema,
    migrate: false,
    prefetch: Number(env("WORKER_PREFETCH", "0"))
  }))
)

const main = Effect.scoped(
  Effect.gen(function*() {
    yield* Layer.build(Main)
    yield* Effect.sync(() => process.stdout.write("__READY__\n"))
    return yield* Effect.never
  })
)

NodeRuntime.runMain(main)
