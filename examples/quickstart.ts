/**
 * The README's quick start, runnable: `npx tsx examples/quickstart.ts`.
 */
import { Effect, Layer, Schedule, Schema } from "effect"
import { Progress, Task, TaskEngine, TaskStore } from "../src/index.js"

class ResizeFailed extends Schema.TaggedError<ResizeFailed>()("ResizeFailed", {
  reason: Schema.String
}) {}

export const ResizeImage = Task.make("resize-image", {
  payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
  success: Schema.Struct({ path: Schema.String }),
  failure: ResizeFailed,
  retry: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(2))),
  timeout: "30 seconds"
})

export const ResizeImageLive = ResizeImage.toLayer(({ url, width }) =>
  Effect.gen(function*() {
    yield* Progress.set(50)
    return { path: `/thumbs/${width}/${url}` }
  })
)

const program = Effect.gen(function*() {
  const engine = yield* TaskEngine.TaskEngine
  const id = yield* engine.submit(ResizeImage, { url: "a.png", width: 200 })
  const result = yield* engine.await(ResizeImage, id)
  const record = yield* engine.get(id)
  yield* Effect.log(`task ${id}: ${JSON.stringify(result)}`, record)
  const invalid = yield* Effect.flip(engine.submit(ResizeImage, { url: "b.png", width: 1.5 }))
  yield* Effect.log(invalid.message)
})

const AppLayer = ResizeImageLive.pipe(
  Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 5 })),
  Layer.provide(TaskStore.layerMemory)
)

Effect.runPromise(program.pipe(Effect.provide(AppLayer)))
