/**
 * The HTTP API as a value: endpoints, their Schemas and statuses, from which the server is built
 * (`TaskHttp`) and the OpenAPI document generated. Groups: `tasks` (submit, inspect, list,
 * cancel, retry, events), `metrics` (Prometheus text and a JSON summary), both behind the bearer
 * `Authorization` middleware, and `dashboard` (the HTML page, left out of the document).
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import {
  DuplicateTask,
  EngineClosed,
  OptionInvalid,
  PayloadInvalid,
  QueueFull,
  StoreUnavailable,
  TaskNotFound,
  UnknownTask
} from "../services/TaskError.js"
import { TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import { Authorization } from "./BearerAuth.js"
import { CrossSiteRequest, MalformedBody, PayloadTooLarge, UnsupportedMediaType } from "./HttpError.js"

/**
 * The answer to an accepted submit (HTTP 202): the new task's id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Submitted = Schema.Struct({ id: Schema.String })

/**
 * One page of `GET /tasks`, newest first; `nextCursor` is the `cursor` of the next page, `null`
 * on the last one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskPage = Schema.Struct({
  tasks: Schema.Array(TaskRecord),
  nextCursor: Schema.NullOr(Schema.String)
})

/**
 * The answer to a cancel: `cancelled` is `false` when the task had already finished.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CancelResult = Schema.Struct({ id: Schema.String, cancelled: Schema.Boolean })

/**
 * The answer to a manual retry: `retried` is `false` when the task had not failed or been
 * cancelled.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RetryResult = Schema.Struct({ id: Schema.String, retried: Schema.Boolean })

/**
 * The figures of one task name (or of all): counters, attempts running, tasks waiting, durations.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskCounts = Schema.Struct({
  submitted: Schema.Number,
  started: Schema.Number,
  completed: Schema.Number,
  failed: Schema.Number,
  retried: Schema.Number,
  timedOut: Schema.Number,
  cancelled: Schema.Number,
  released: Schema.Number,
  running: Schema.Number,
  queued: Schema.Number,
  duration: Schema.Struct({
    count: Schema.Number,
    totalMillis: Schema.Number,
    minMillis: Schema.Number,
    maxMillis: Schema.Number
  })
})

/**
 * The engine's metrics snapshot as `GET /stats` sends it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Stats = Schema.Struct({
  timestamp: Schema.Date,
  total: TaskCounts,
  tasks: Schema.Record({ key: Schema.String, value: TaskCounts })
})

/**
 * The largest page `GET /tasks` gives.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxPageSize = 1000

/**
 * The page size of `GET /tasks` when `limit` is absent.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPageSize = 50

const IdPath = Schema.Struct({ id: Schema.String })

/**
 * The range of a task's `priority`: a 32-bit signed integer (what every store keeps).
 *
 * @since 0.1.0
 * @category constants
 */
export const priorityRange = { minimum: -2_147_483_648, maximum: 2_147_483_647 } as const

/**
 * The largest `delayMs` of a submit: 100,000 days, so that now plus the delay is still a date.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDelayMs = 8_640_000_000_000

/**
 * An integer in `[minimum, maximum]` written as a query parameter's text; the OpenAPI document
 * declares it an integer with that range (clients send numbers, the URL carries their digits).
 */
const IntegerParam = (minimum: number, maximum: number, description: string) =>
  Schema.NumberFromString.pipe(Schema.int(), Schema.between(minimum, maximum)).annotations({
    description,
    jsonSchema: { type: "integer", minimum, maximum, description }
  })

const NameParam = Schema.Struct({
  name: Schema.String.annotations({ description: "The task's name (as given to `Task.make`: 1 to 200 characters)" })
})

const SubmitParams = Schema.Struct({
  priority: Schema.optional(IntegerParam(priorityRange.minimum, priorityRange.maximum, "Higher runs first [0]")),
  delayMs: Schema.optional(IntegerParam(0, maxDelayMs, "Run no earlier than this many milliseconds from now [0]"))
})

const SubmitHeaders = Schema.Struct({
  "idempotency-key": Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)))
})

const submitEndpoint = <const Name extends string, const Path extends HttpApiEndpoint.PathSegment>(
  name: Name,
  path: Path
) =>
  HttpApiEndpoint.post(name, path)
    .setPath(NameParam)
    .setUrlParams(SubmitParams)
    .setHeaders(SubmitHeaders)
    .setPayload(Schema.Unknown.annotations({ description: "The task's payload, as JSON; its Schema validates it." }))
    .addSuccess(Submitted, { status: 202 })
    .addError(PayloadInvalid, { status: 400 })
    .addError(OptionInvalid, { status: 400 })
    .addError(MalformedBody)
    .addError(UnknownTask, { status: 404 })
    .addError(DuplicateTask, { status: 409 })
    .addError(PayloadTooLarge)
    .addError(UnsupportedMediaType)
    .addError(QueueFull, { status: 429 })
    .addError(EngineClosed, { status: 503 })

const submit = submitEndpoint("submit", "/tasks/:name/submit")
  .annotate(OpenApi.Summary, "Submit a task")
  .annotate(
    OpenApi.Description,
    "Validates the JSON body with the task's payload Schema, stores the task and answers 202 with its id at once; " +
      "the task runs in the background. A repeated `Idempotency-Key` answers 409 with the existing task's id. " +
      "(`POST /tasks/{name}` does the same; it is left out of this document, where it would be the same path as `GET /tasks/{id}`.)"
  )

/** The first path of submit, kept working; OpenAPI 3.1 sees it as `/tasks/{id}`, so it is not in the document. */
const submitAlias = submitEndpoint("submitAlias", "/tasks/:name").annotate(OpenApi.Exclude, true)

const get = HttpApiEndpoint.get("get", "/tasks/:id")
  .setPath(IdPath)
  .addSuccess(TaskRecord)
  .addError(TaskNotFound, { status: 404 })
  .annotate(OpenApi.Summary, "A task's record")

const list = HttpApiEndpoint.get("list", "/tasks")
  .setUrlParams(Schema.Struct({
    status: Schema.optional(Schema.Union(TaskStatus, Schema.Array(TaskStatus))),
    name: Schema.optional(Schema.String),
    limit: Schema.optional(IntegerParam(1, maxPageSize, `Records per page [${defaultPageSize}]`)),
    cursor: Schema.optional(Schema.String)
  }))
  .addSuccess(TaskPage)
  .addError(OptionInvalid, { status: 400 })
  .annotate(OpenApi.Summary, "List tasks, newest first")
  .annotate(
    OpenApi.Description,
    `Filters by status (repeatable) and name; pages of \`limit\` records (${defaultPageSize} by default, at most ${maxPageSize}); ` +
      "`cursor` is the `nextCursor` of the previous page (the id of its last record)."
  )

const cancel = HttpApiEndpoint.post("cancel", "/tasks/:id/cancel")
  .setPath(IdPath)
  .addSuccess(CancelResult)
  .addError(TaskNotFound, { status: 404 })
  .annotate(OpenApi.Summary, "Cancel a task (a running attempt is interrupted)")

const retry = HttpApiEndpoint.post("retry", "/tasks/:id/retry")
  .setPath(IdPath)
  .addSuccess(RetryResult)
  .addError(TaskNotFound, { status: 404 })
  .annotate(OpenApi.Summary, "Run a failed or cancelled task again, from attempt 1")

const events = HttpApiEndpoint.get("events", "/tasks/:id/events")
  .setPath(IdPath)
  .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
  .addSuccess(HttpApiSchema.NoContent)
  .addError(TaskNotFound, { status: 404 })
  .annotate(OpenApi.Summary, "Server-sent events of a task's record changes")
  .annotate(
    OpenApi.Description,
    "An `event: record` with the encoded record now and at each change, then `event: end` once the task is terminal. " +
      "A task that is already terminal answers 204 with no body, so that an `EventSource` reconnecting after `end` stops."
  )

const allEvents = HttpApiEndpoint.get("allEvents", "/events")
  .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
  .annotate(OpenApi.Summary, "Server-sent events of every record change")

/**
 * The `tasks` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class TasksGroup extends HttpApiGroup.make("tasks")
  .add(submit)
  .add(submitAlias)
  .add(get)
  .add(list)
  .add(cancel)
  .add(retry)
  .add(events)
  .add(allEvents)
  .addError(StoreUnavailable, { status: 503 })
  .middleware(Authorization)
  .annotate(OpenApi.Description, "Submit and inspect tasks")
{}

/**
 * The `metrics` group.
 *
 * @since 0.1.0
 * @category groups
 */
export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("prometheus", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4" }))
      .annotate(OpenApi.Summary, "Prometheus text format of the metric registry")
  )
  .add(
    HttpApiEndpoint.get("stats", "/stats")
      .addSuccess(Stats)
      .annotate(OpenApi.Summary, "This engine's counters per task name, as JSON")
  )
  .middleware(Authorization)
{}

/**
 * The `dashboard` group: the HTML page at `/` (not part of the OpenAPI document).
 *
 * @since 0.1.0
 * @category groups
 */
export class DashboardGroup extends HttpApiGroup.make("dashboard")
  .add(HttpApiEndpoint.get("page", "/").addSuccess(HttpApiSchema.Text({ contentType: "text/html" })))
  .annotate(OpenApi.Exclude, true)
{}

/**
 * The whole API.
 *
 * @since 0.1.0
 * @category api
 */
export class TaskApi extends HttpApi.make("effect-tasks")
  .add(TasksGroup)
  .add(MetricsGroup)
  .add(DashboardGroup)
  .addError(CrossSiteRequest)
  .annotate(OpenApi.Title, "effect-tasks")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "Submit, inspect, cancel and retry background tasks; watch them live; read their metrics."
  )
{}
