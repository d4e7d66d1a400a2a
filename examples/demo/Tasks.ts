/**
 * The demo's tasks: the five use cases of the background-tasks guide (datasets in chunks, emails,
 * image resizing, data sync, cleanup) plus a long report export that the demo cancels. Each is a
 * `Task.make` definition (a plain value) and a handler registered with `toLayer`.
 *
 * @since 0.1.0
 */
import { Array as Arr, Effect, Exit, Layer, Option, Schedule, Schema } from "effect"
import type { TaskRecord } from "../../src/index.js"
import { Progress, Task, TaskEngine, TaskError } from "../../src/index.js"
import { MailboxNotFound, SmtpUnavailable, World } from "./World.js"

// -- 1. a dataset processed in chunks, with progress ------------------------------------------

/**
 * @since 0.1.0
 * @category tasks
 */
export const ProcessDataset = Task.make("process-dataset", {
  payload: Schema.Struct({ dataset: Schema.String, rows: Schema.Int, chunkSize: Schema.Int }),
  success: Schema.Struct({ rows: Schema.Int, checksum: Schema.Int })
})

const ProcessDatasetLive = ProcessDataset.toLayer(({ chunkSize, rows }) =>
  Effect.gen(function*() {
    const data = Arr.makeBy(rows, (i) => i + 1)
    let checksum = 0
    for (const chunk of Arr.chunksOf(data, chunkSize)) {
      yield* Effect.sleep("140 millis") // the work on one chunk
      for (const row of chunk) checksum = (checksum * 31 + row) % 1_000_003
      yield* Progress.advance(chunk.length, rows)
    }
    return { rows, checksum }
  })
)

// -- 2. emails: transient failures retry, permanent ones do not -------------------------------

/**
 * @since 0.1.0
 * @category tasks
 */
export const SendEmail = Task.make("send-email", {
  payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  failure: Schema.Union(SmtpUnavailable, MailboxNotFound),
  // the guide's policy, shortened for the demo: 4 attempts, waiting 150, 300, 600 ms
  retry: Schedule.exponential("150 millis").pipe(Schedule.intersect(Schedule.recurs(3))),
  retryWhile: (error) => error._tag === "SmtpUnavailable"
})

const SendEmailLive = SendEmail.toLayer(({ subject, to }) =>
  Effect.flatMap(World, (world) => world.sendEmail(to, subject))
)

// -- 3. image resizing, with a timeout per attempt --------------------------------------------

/**
 * @since 0.1.0
 * @category tasks
 */
export const ResizeImage = Task.make("resize-image", {
  payload: Schema.Struct({ image: Schema.String, width: Schema.Int }),
  success: Schema.Struct({ path: Schema.String }),
  retry: Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
  timeout: "900 millis"
})

const ResizeImageLive = ResizeImage.toLayer(({ image, width }) =>
  Effect.gen(function*() {
    const world = yield* World
    const millis = yield* world.resizeMillis(image)
    for (const percent of [25, 50, 75]) {
      yield* Effect.sleep(millis / 4)
      yield* Progress.set(percent)
    }
    yield* Effect.sleep(millis / 4)
    const path = `/thumbs/${width}/${image.replace(/\.\w+$/, ".webp")}`
    yield* world.writeFile(path)
    return { path }
  })
)

// -- 4. a data sync, page by page -------------------------------------------------------------

/**
 * @since 0.1.0
 * @category tasks
 */
export const SyncData = Task.make("sync-data", {
  payload: Schema.Struct({ source: Schema.String, target: Schema.String, pageSize: Schema.Int }),
  success: Schema.Struct({ inserted: Schema.Int, updated: Schema.Int })
})

const SyncDataLive = SyncData.toLayer(({ pageSize }) =>
  Effect.gen(function*() {
    const world = yield* World
    let inserted = 0
    let updated = 0
    for (let offset = 0; offset < world.sourceSize; offset += pageSize) {
      const rows = yield* world.sourcePage(offset, pageSize)
      const written = yield* world.upsert(rows)
      inserted += written.inserted
      updated += written.updated
      yield* Progress.advance(rows.length, world.sourceSize)
    }
    return { inserted, updated }
  })
)

// -- 5. cleanup of finished tasks past their retention ----------------------------------------

/**
 * @since 0.1.0
 * @category tasks
 */
export const CleanupFinished = Task.make("cleanup-finished", {
  success: Schema.Struct({ deleted: Schema.Int }),
  failure: TaskError.StoreUnavailable
})

const CleanupFinishedLive = CleanupFinished.toLayer(() =>
  Effect.gen(function*() {
    const engine = yield* TaskEngine.TaskEngine
    const deleted = yield* engine.cleanup
    return { deleted }
  })
)

// -- a long export, cancelled while it runs: its finalizer removes the partial file ----------

/**
 * @since 0.1.0
 * @category tasks
 */
export const ExportReport = Task.make("export-report", {
  payload: Schema.Struct({ report: Schema.String, pages: Schema.Int }),
  success: Schema.Struct({ path: Schema.String })
})

/**
 * Where `ExportReport` writes while it works; gone once the task ends, however it ends.
 *
 * @since 0.1.0
 * @category tasks
 */
export const partialPath = (report: string): string => `/exports/${report}.pdf.partial`

const ExportReportLive = ExportReport.toLayer(({ pages, report }) =>
  Effect.gen(function*() {
    const world = yield* World
    const partial = partialPath(report)
    let written = 0
    return yield* Effect.acquireUseRelease(
      world.writeFile(partial),
      () =>
        Effect.gen(function*() {
          for (; written < pages; written++) {
            yield* Effect.sleep("150 millis")
            yield* Progress.advance(1, pages)
          }
          const path = `/exports/${report}.pdf`
          yield* world.writeFile(path)
          return { path }
        }),
      (_, exit) =>
        Effect.zipRight(
          world.removeFile(partial),
          Exit.isInterrupted(exit)
            ? Effect.log(`export-report finalizer: interrupted at page ${written}/${pages}, removed ${partial}`)
            : Effect.void
        )
    )
  })
)

/**
 * Every handler, registered with the engine; requires the `TaskEngine` and the `World`.
 *
 * @since 0.1.0
 * @category layers
 */
export const HandlersLive = Layer.mergeAll(
  ProcessDatasetLive,
  SendEmailLive,
  ResizeImageLive,
  SyncDataLive,
  CleanupFinishedLive,
  ExportReportLive
)

const labeller = <D extends Task.Any>(definition: D, show: (payload: Task.Payload<D>) => string) => {
  // Task.Any's payloadSchema is a union of two Schema types, which decode* does not take as is
  const decode = Schema.decodeUnknownOption(definition.payloadSchema as Schema.Schema<Task.Payload<D>, unknown>)
  return [definition.name, (payload: unknown) => Option.match(decode(payload), { onNone: () => "", onSome: show })] as const
}

const labellers = new Map<string, (payload: unknown) => string>([
  labeller(ProcessDataset, ({ dataset, rows }) => `${dataset} (${rows.toLocaleString("en")} rows)`),
  labeller(SendEmail, ({ to }) => to),
  labeller(ResizeImage, ({ image, width }) => `${image} → ${width}px`),
  labeller(SyncData, ({ source, target }) => `${source} → ${target}`),
  labeller(CleanupFinished, () => "finished tasks past retention"),
  labeller(ExportReport, ({ pages, report }) => `${report}.pdf (${pages} pages)`)
])

/**
 * A short human label for a task, from its payload.
 *
 * @since 0.1.0
 * @category labels
 */
export const labelOf = (record: TaskRecord.TaskRecord): string => labellers.get(record.name)?.(record.payload) ?? ""
