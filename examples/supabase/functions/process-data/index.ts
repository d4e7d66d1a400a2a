/**
 * The guide's "basic background task" (supabase/functions/process-data), done with effect-tasks.
 *
 * The guide's version started an un-awaited async function and answered at once: nothing kept
 * the isolate alive for it, a failure was only `console.error`ed, nobody could ask how it went,
 * and when the runtime stopped the work vanished without a word. Here:
 *
 * - `POST /process-data` with `{ "data": [...] }` validates the payload (400 names the bad field),
 *   stores a task and answers `202 { id }` at once;
 * - the task runs in the background, registered with `EdgeRuntime.waitUntil` until the engine is
 *   idle; it reports progress and is retried with exponential backoff (1 s, 2 s) when it fails;
 * - `GET /process-data/tasks/{id}` (or `/events` for a live stream) tells how it is going; the
 *   whole API and the dashboard are under `/process-data/`;
 * - when the runtime announces its end (`beforeunload`), the engine stops, hands unfinished tasks
 *   back to a durable store, or, over the memory store used here, logs exactly which are lost.
 *
 * Deploy: `supabase functions deploy process-data` (see `deno.json` for the imports). Set
 * `TASKS_TOKEN` to require `Authorization: Bearer <token>` on the task API.
 */
import { Effect, Layer, Schedule, Schema } from "effect"
import { EdgeRuntime, Progress, Task, TaskStore, WaitUntil, WebHandler } from "effect-tasks"

/** One record to process. */
const Item = Schema.Struct({ id: Schema.String, value: Schema.Number })

class ProcessingFailed extends Schema.TaggedError<ProcessingFailed>()("ProcessingFailed", {
  item: Schema.String,
  reason: Schema.String
}) {}

/** The task: a plain value, which a producer needs to submit it. */
export const ProcessData = Task.make("process-data", {
  payload: Schema.Struct({ data: Schema.Array(Item).pipe(Schema.minItems(1), Schema.maxItems(10_000)) }),
  success: Schema.Struct({ processed: Schema.Int, sum: Schema.Number }),
  failure: ProcessingFailed,
  retry: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(2))),
  timeout: "2 minutes"
})

/** Milliseconds of (simulated) I/O per item: stands in for the guide's `processData`. */
const msPerItem = Number(Deno.env.get("PROCESS_MS_PER_ITEM") ?? "20")

/** The handler: processes the items in chunks of 10, reporting progress after each. */
const ProcessDataLive = ProcessData.toLayer(({ data }) =>
  Effect.gen(function*() {
    let sum = 0
    for (let start = 0; start < data.length; start += 10) {
      const chunk = data.slice(start, start + 10)
      for (const item of chunk) {
        if (!Number.isFinite(item.value)) {
          return yield* new ProcessingFailed({ item: item.id, reason: "value is not a finite number" })
        }
        sum += item.value
      }
      yield* Effect.sleep(msPerItem * chunk.length)
      yield* Progress.advance(chunk.length, data.length)
    }
    yield* Effect.logInfo(`process-data: processed ${data.length} item(s)`)
    return { processed: data.length, sum }
  })
)

const AppLayer = ProcessDataLive.pipe(
  Layer.provideMerge(EdgeRuntime.layer({ maxConcurrent: 5, shutdownTimeout: "500 millis" })),
  Layer.provide(TaskStore.layerMemory),
  Layer.merge(WaitUntil.layerSupabase)
)

const token = Deno.env.get("TASKS_TOKEN")
const { handler } = WebHandler.make(AppLayer, { basePath: "/process-data", token })

Deno.serve((request) => {
  const url = new URL(request.url)
  // the guide's entry point: POST to the function itself submits the task
  if (request.method === "POST" && (url.pathname === "/process-data" || url.pathname === "/process-data/")) {
    url.pathname = "/process-data/tasks/process-data/submit"
    return handler(new Request(url, request))
  }
  return handler(request)
})
