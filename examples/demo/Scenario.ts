/**
 * What the demo does with the engine: submits the guide's use cases (some with a priority, one
 * delayed), cancels the report export while it runs, waits for every task to end, then runs the
 * cleanup task. It returns each task's last record with what was expected of it, and a few
 * checks of behaviour that no single record shows (priority order, delay, finalizer, cleanup).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Stream } from "effect"
import type { Task, TaskRecord } from "../../src/index.js"
import { TaskEngine } from "../../src/index.js"
import { CleanupFinished, ExportReport, partialPath, ProcessDataset, ResizeImage, SendEmail, SyncData } from "./Tasks.js"
import { World } from "./World.js"

/**
 * How one task should end.
 *
 * @since 0.1.0
 * @category models
 */
export interface Expected {
  readonly id: TaskRecord.TaskId
  readonly definition: Task.Any
  readonly status: TaskRecord.TaskStatus
  readonly attempts: number
  /** The error's tag, for a task meant to fail. */
  readonly error?: string
}

/**
 * A behaviour checked across tasks.
 *
 * @since 0.1.0
 * @category models
 */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Outcome {
  readonly expected: ReadonlyArray<Expected>
  /** Every task's last record, in submission order (those cleanup deleted as they were before). */
  readonly records: ReadonlyArray<TaskRecord.TaskRecord>
  /** The ids cleanup deleted from the store. */
  readonly deleted: ReadonlySet<string>
  readonly checks: ReadonlyArray<Check>
}

const delayed = Duration.millis(1_500)

/**
 * Runs the scenario on the engine in context.
 *
 * @since 0.1.0
 * @category scenario
 */
export const run = Effect.gen(function*() {
  const engine = yield* TaskEngine.TaskEngine
  const world = yield* World
  yield* world.seedTarget
  const expected: Array<Expected> = []

  const submit = <D extends Task.Any>(
    definition: D,
    payload: Task.Payload<D>,
    expect: Omit<Expected, "id" | "definition">,
    options?: TaskEngine.SubmitOptions
  ) =>
    Effect.map(engine.submit(definition, payload, options), (id) => {
      expected.push({ id, definition, ...expect })
      return id
    })
  const completes = { status: "completed", attempts: 1 } as const

  // 1. datasets in chunks, and a long export that is cancelled below
  yield* submit(ProcessDataset, { dataset: "orders.csv", rows: 1_200, chunkSize: 100 }, completes)
  yield* submit(ProcessDataset, { dataset: "events.csv", rows: 2_400, chunkSize: 200 }, completes)
  const exportId = yield* submit(ExportReport, { report: "q3-report", pages: 30 }, { status: "cancelled", attempts: 1 })

  // 3. images: the panorama times out once (cold cache) and then succeeds; the 4k scan always
  //    times out, and fails after its 3 attempts
  yield* submit(ResizeImage, { image: "photo-1.jpg", width: 640 }, completes)
  yield* submit(ResizeImage, { image: "panorama.tiff", width: 1280 }, { status: "completed", attempts: 2 })
  yield* submit(ResizeImage, { image: "photo-2.jpg", width: 640 }, completes)
  yield* submit(ResizeImage, { image: "scan-4k.tiff", width: 2048 }, {
    status: "failed",
    attempts: 3,
    error: "TaskTimeout"
  })

  // 2. emails: flaky.example's server is down for two deliveries; nowhere.invalid has no mailbox,
  //    which retryWhile does not retry
  yield* submit(SendEmail, { to: "alice@example.com", subject: "Welcome" }, completes)
  yield* submit(SendEmail, { to: "bob@flaky.example", subject: "Welcome" }, { status: "completed", attempts: 3 })
  yield* submit(SendEmail, { to: "carol@nowhere.invalid", subject: "Welcome" }, {
    status: "failed",
    attempts: 1,
    error: "MailboxNotFound"
  })

  // priority: the workers are busy, so the newsletters queue; the password reset, submitted after
  // them with a higher priority, starts first
  const newsletters = yield* engine.submitMany(
    SendEmail,
    ["dave", "erin", "frank"].map((name) => ({ to: `${name}@example.com`, subject: "October newsletter" }))
  )
  for (const id of newsletters) expected.push({ id, definition: SendEmail, ...completes })
  const urgentId = yield* submit(SendEmail, { to: "grace@example.com", subject: "Password reset" }, completes, {
    priority: 10
  })

  // 4. a data sync, scheduled to run a little later
  const syncId = yield* submit(SyncData, { source: "crm", target: "warehouse", pageSize: 60 }, completes, {
    delay: delayed
  })
  yield* Effect.log(`submitted ${expected.length} tasks; sync-data delayed ${Duration.format(delayed)}`)

  // cancel the export once it is 30% done: its finalizer runs and removes the partial file
  const canceller = yield* Effect.fork(
    Effect.gen(function*() {
      yield* engine.watch(exportId).pipe(Stream.takeUntil((record) => record.progress >= 30), Stream.runDrain)
      yield* Effect.log(`cancelling export-report ${exportId}`)
      return yield* engine.cancel(exportId)
    })
  )

  // wait for every task to end, however it ends (await gives the typed failure; not needed here)
  yield* Effect.forEach(expected, (task) => Effect.exit(engine.await(task.definition, task.id)), {
    concurrency: "unbounded",
    discard: true
  })
  const cancelled = yield* canceller.await.pipe(Effect.flatten)
  const settled = yield* engine.list()

  // 5. cleanup: delete finished tasks past their retention (2 s in this demo, 7 days by default)
  yield* Effect.log("all tasks ended; running cleanup-finished")
  const cleanupId = yield* submit(CleanupFinished, undefined, completes)
  const { deleted } = yield* engine.await(CleanupFinished, cleanupId)
  const remaining = new Set((yield* engine.list()).map((record) => record.id))
  yield* Effect.log(`cleanup deleted ${deleted} finished task(s); ${remaining.size} remain in the store`)

  const byId = new Map(settled.map((record) => [record.id as string, record]))
  const cleanupRecord = yield* engine.get(cleanupId)
  if (Option.isSome(cleanupRecord)) byId.set(cleanupId, cleanupRecord.value)
  const records = expected.flatMap((task) => Option.toArray(Option.fromNullable(byId.get(task.id))))
  const removed = new Set(settled.filter((record) => !remaining.has(record.id)).map((record) => record.id as string))

  const startOf = (id: string) => byId.get(id)?.startedAt?.getTime() ?? Number.NaN
  const laterNewsletters = newsletters.filter((id) => startOf(id) > startOf(urgentId)).length
  const sync = byId.get(syncId)
  const syncWaited = sync?.startedAt ? sync.startedAt.getTime() - sync.createdAt.getTime() : 0
  const partialLeft = yield* world.fileExists(partialPath("q3-report"))
  const outbox = yield* world.outbox
  const checks: ReadonlyArray<Check> = [
    {
      name: "priority",
      ok: laterNewsletters === newsletters.length,
      detail: `the priority-10 email started before ${laterNewsletters} of the ${newsletters.length} newsletters queued ahead of it`
    },
    {
      name: "delay",
      ok: syncWaited >= Duration.toMillis(delayed),
      detail: `sync-data started ${syncWaited} ms after it was submitted (delay ${Duration.format(delayed)})`
    },
    {
      name: "cancel",
      ok: cancelled && !partialLeft,
      detail: `cancel returned ${cancelled}; the finalizer ${partialLeft ? "did NOT remove" : "removed"} the partial file`
    },
    {
      name: "emails",
      ok: outbox.length === 6,
      detail: `${outbox.length} emails delivered (6 expected: one mailbox does not exist)`
    },
    {
      name: "cleanup",
      ok: deleted > 0 && deleted === removed.size,
      detail: `cleanup-finished deleted ${deleted} record(s) finished more than 2 s before it ran`
    }
  ]
  return { expected, records, deleted: removed, checks } satisfies Outcome
})
