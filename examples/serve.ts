/**
 * `npm run serve`: the HTTP API and the dashboard on http://127.0.0.1:3000 over the memory store, or
 * over PostgreSQL when `DATABASE_URL` is set (tasks then outlive the process), with demo tasks flowing so that there is something to watch: image resizes that report progress,
 * e-mails whose SMTP server is flaky (failed attempts, retried with backoff), reports that take a
 * while and sometimes fail for good, and CRM syncs that sometimes time out.
 *
 * Environment: `DATABASE_URL` (a PostgreSQL to keep the tasks in) [none: the memory store], `PORT` [3000], `HOST` [127.0.0.1], `TASKS_TOKEN` (require a bearer token) [none],
 * `DEMO_EVERY_MS` (how often the demo producer submits) [1500], `DEMO=0` to submit nothing.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Random, Redacted, Schedule, Schema } from "effect"
import * as NodeServer from "../src/http/NodeServer.js"
import { EdgeRuntime, Progress, Task, TaskEngine, TaskStore } from "../src/index.js"

class SmtpUnavailable extends Schema.TaggedError<SmtpUnavailable>()("SmtpUnavailable", { host: Schema.String }) {}
class ReportFailed extends Schema.TaggedError<ReportFailed>()("ReportFailed", { reason: Schema.String }) {}

const ResizeImage = Task.make("resize-image", {
  payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
  success: Schema.Struct({ path: Schema.String })
})

const SendEmail = Task.make("send-email", {
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  failure: SmtpUnavailable,
  retry: Schedule.exponential("500 millis").pipe(Schedule.intersect(Schedule.recurs(3)))
})

const BuildReport = Task.make("build-report", {
  payload: Schema.Struct({ day: Schema.String }),
  success: Schema.Struct({ rows: Schema.Int }),
  failure: ReportFailed,
  retry: Schedule.stop
})

const SyncCrm = Task.make("sync-crm", {
  payload: Schema.Struct({ account: Schema.String }),
  timeout: "2 seconds",
  retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2)))
})

const handlers = Layer.mergeAll(
  ResizeImage.toLayer(({ url, width }) =>
    Effect.gen(function*() {
      for (let step = 1; step <= 10; step++) {
        yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(150, 450)))
        yield* Progress.set(step * 10)
      }
      return { path: `/thumbs/${width}/${url}` }
    })
  ),
  SendEmail.toLayer(({ to }) =>
    Effect.gen(function*() {
      yield* Effect.sleep("300 millis")
      if ((yield* Random.next) < 0.5) return yield* new SmtpUnavailable({ host: "smtp.example.test" })
      yield* Effect.logInfo(`mail sent to ${to}`)
    })
  ),
  BuildReport.toLayer(({ day }) =>
    Effect.gen(function*() {
      const rows = 400
      for (let done = 0; done < rows; done += 40) {
        yield* Effect.sleep("700 millis")
        yield* Progress.advance(40, rows)
        if (done === 200 && (yield* Random.next) < 0.35) {
          return yield* new ReportFailed({ reason: `source table for ${day} is missing` })
        }
      }
      return { rows }
    })
  ),
  SyncCrm.toLayer(() => Effect.flatMap(Random.nextIntBetween(500, 3000), (ms) => Effect.sleep(Duration.millis(ms))))
)

/** Submits a random demo task every `every`; at most 100,000 of them. */
const producer = (every: Duration.Duration) =>
  Effect.gen(function*() {
    const engine = yield* TaskEngine.TaskEngine
    const submitOne = Effect.gen(function*() {
      const n = yield* Random.nextIntBetween(0, 100)
      const pick = yield* Random.nextIntBetween(0, 4)
      switch (pick) {
        case 0:
          return yield* engine.submit(ResizeImage, { url: `photo-${n}.png`, width: 200 + n })
        case 1:
          return yield* engine.submit(SendEmail, { to: `user${n}@example.test`, subject: "Welcome" })
        case 2:
          return yield* engine.submit(BuildReport, { day: `2025-01-${String(1 + (n % 28)).padStart(2, "0")}` })
        default:
          return yield* engine.submit(SyncCrm, { account: `acct-${n}` })
      }
    })
    yield* submitOne.pipe(
      Effect.catchAll((error) => Effect.logWarning(`demo submit failed: ${error.message}`)),
      Effect.repeat(Schedule.spaced(every).pipe(Schedule.intersect(Schedule.recurs(100_000))))
    )
  })

const port = Number(process.env.PORT ?? "3000")
const host = process.env.HOST ?? "127.0.0.1"
const every = Duration.millis(Number(process.env.DEMO_EVERY_MS ?? "1500"))

const databaseUrl = process.env.DATABASE_URL
const StoreLive = databaseUrl === undefined || databaseUrl === ""
  ? TaskStore.layerMemory
  : TaskStore.layerPostgres().pipe(Layer.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })), Layer.orDie)

// EdgeRuntime.layer is TaskEngine.layer plus an account, at shutdown (Ctrl-C), of the unfinished
// tasks a memory store drops (a durable store keeps them)
const EngineLive = handlers.pipe(
  Layer.provideMerge(
    EdgeRuntime.layer({ maxConcurrent: 5, shutdownTimeout: "3 seconds", cleanup: { interval: "1 minute", retention: "30 minutes" } })
  ),
  Layer.provide(StoreLive)
)

const Demo = process.env.DEMO === "0" ? Layer.empty : Layer.scopedDiscard(Effect.forkScoped(producer(every)))

const Main = Layer.mergeAll(NodeServer.layer({ port, host, token: process.env.TASKS_TOKEN }), Demo).pipe(
  Layer.provide(EngineLive),
  Layer.tap(() =>
    Effect.logInfo(
      `dashboard: http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}/ (store: ${StoreLive === TaskStore.layerMemory ? "memory" : "PostgreSQL"})`
    )
  )
)

NodeRuntime.runMain(Layer.launch(Main))
