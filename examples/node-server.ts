/**
 * A whole Node server, as a user's own: one task definition and its handler, the engine on
 * PostgreSQL (or the memory store without `DATABASE_URL`), the HTTP API and dashboard behind a
 * bearer token, and a graceful shutdown on SIGINT/SIGTERM (running attempts get 10 s, the rest go
 * back to the store as pending). Run it with `npx tsx examples/node-server.ts`; in your project
 * the imports are `effect-tasks` and `effect-tasks/http/NodeServer`.
 *
 * Environment: `DATABASE_URL` [the memory store], `PORT` [3000], `TASKS_TOKEN` [none: open API].
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schedule, Schema } from "effect"
import * as NodeServer from "../src/http/NodeServer.js"
import { ErrorReporter, Progress, Task, TaskEngine, TaskStore } from "../src/index.js"

class ResizeFailed extends Schema.TaggedError<ResizeFailed>()("ResizeFailed", { reason: Schema.String }) {}

const ResizeImage = Task.make("resize-image", {
  payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
  success: Schema.Struct({ path: Schema.String }),
  failure: ResizeFailed,
  retry: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(2))),
  timeout: "30 seconds"
})

const ResizeImageLive = ResizeImage.toLayer(({ url, width }) =>
  Effect.gen(function*() {
    if (width <= 0) return yield* new ResizeFailed({ reason: `width ${width} is not positive` })
    yield* Effect.sleep("200 millis")
    yield* Progress.set(50)
    yield* Effect.sleep("200 millis")
    return { path: `/thumbs/${width}/${url}` }
  })
)

const databaseUrl = process.env.DATABASE_URL
const StoreLive = databaseUrl === undefined || databaseUrl === ""
  ? Layer.merge(TaskStore.layerMemory, ErrorReporter.layerMemory)
  : Layer.merge(TaskStore.layerPostgres(), ErrorReporter.layerSql()).pipe(
    Layer.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })),
    Layer.orDie
  )

const Main = NodeServer.layer({ port: Number(process.env.PORT ?? "3000"), token: process.env.TASKS_TOKEN }).pipe(
  Layer.provide(ResizeImageLive),
  Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 10, shutdownTimeout: "10 seconds" })),
  Layer.provide(StoreLive)
)

// runMain closes the layer's scope on SIGINT/SIGTERM: that is the engine's graceful shutdown
NodeRuntime.runMain(Layer.launch(Main))
