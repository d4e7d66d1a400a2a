/**
 * The HTTP API's implementation over a `TaskEngine`: the handlers of `TaskApi`, the bearer
 * authentication, `GET /openapi.json`, and the response headers every answer gets. `layer`
 * gives what `HttpApiBuilder.serve` (Node) or `HttpApiBuilder.toWebHandler` (Deno, edge
 * functions) needs; `WebHandler` and `NodeServer` use it.
 *
 * Status codes: 202 accepted submit; 400 `PayloadInvalid` (its `path` names the bad field),
 * `MalformedBody`, `HttpApiDecodeError`; 401 `Unauthorized`; 404 `UnknownTask`, `TaskNotFound`;
 * 409 `DuplicateTask` (its `id` is the existing task); 413 `PayloadTooLarge`; 429 `QueueFull`;
 * 503 `StoreUnavailable`, `EngineClosed`.
 *
 * @since 0.1.0
 */
import type { HttpApi } from "@effect/platform"
import { HttpApiBuilder, HttpApp, HttpServerResponse } from "@effect/platform"
import type { Redacted } from "effect"
import { Duration, Effect, Layer, Option } from "effect"
import { TaskEngine } from "../engine/TaskEngine.js"
import type { SubmitOptions } from "../engine/TaskEngine.js"
import { TaskNotFound } from "../services/TaskError.js"
import { isTerminal } from "../services/TaskRecord.js"
import * as BearerAuth from "./BearerAuth.js"
import * as Dashboard from "./Dashboard.js"
import * as KeepAlive from "./KeepAlive.js"
import * as Prometheus from "./Prometheus.js"
import * as RequestBody from "./RequestBody.js"
import * as ServerSentEvents from "./ServerSentEvents.js"
import { defaultPageSize, TaskApi } from "./TaskApi.js"

/**
 * Options of the HTTP API. Every field is optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The bearer token the task and metrics endpoints require; none: no authentication [none]. */
  readonly token?: Redacted.Redacted<string> | string | undefined
  /** The largest request body accepted; larger ones get 413 [1 MiB]. */
  readonly maxBodyBytes?: number | undefined
  /** How often event streams send a keep-alive comment ["15 seconds"]. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /**
   * After an accepted submit, keep the runtime alive (with the `WaitUntil` in context) until the
   * engine is `"idle"` or `"drained"` (see `KeepAlive`), or `false` for never ["idle"].
   */
  readonly keepAlive?: KeepAlive.Until | false | undefined
  /** Serve the dashboard at `/` [true]. */
  readonly dashboard?: boolean | undefined
}

const notFound = (id: string) => Effect.fail(new TaskNotFound({ id }))

const eventStream = (body: ReturnType<typeof ServerSentEvents.fromRecords>) =>
  HttpServerResponse.stream(body, {
    contentType: ServerSentEvents.contentType,
    headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
  })

const tasksLive = (options: Options) =>
  HttpApiBuilder.group(TaskApi, "tasks", (handlers) =>
    Effect.gen(function*() {
      const engine = yield* TaskEngine
      const maxBodyBytes = options.maxBodyBytes ?? RequestBody.defaultMaxBytes
      const sse = { heartbeat: options.heartbeat ?? "15 seconds" }
      const keepAlive = options.keepAlive === false
        ? Effect.void
        : (yield* KeepAlive.make(engine, { until: options.keepAlive ?? "idle" })).register
      return handlers
        .handleRaw("submit", ({ headers, path, request, urlParams }) =>
          Effect.gen(function*() {
            const payload = yield* RequestBody.json(request, maxBodyBytes)
            const submitOptions: SubmitOptions = {
              onDuplicate: "fail",
              priority: urlParams.priority,
              delay: urlParams.delayMs === undefined ? undefined : Duration.millis(urlParams.delayMs),
              idempotencyKey: headers["idempotency-key"]
            }
            const id = yield* engine.submitUnknown(path.name, payload, submitOptions)
            yield* keepAlive
            return { id }
          }))
        .handle("get", ({ path }) =>
          Effect.flatMap(
            engine.get(path.id),
            Option.match({ onNone: () => notFound(path.id), onSome: Effect.succeed })
          ))
        .handle("list", ({ urlParams }) =>
          Effect.map(
            engine.list({
              status: urlParams.status,
              name: urlParams.name,
              limit: urlParams.limit ?? defaultPageSize,
              cursor: urlParams.cursor
            }),
            (tasks) => {
              const limit = urlParams.limit ?? defaultPageSize
              const last = tasks[tasks.length - 1]
              return { tasks, nextCursor: tasks.length === limit && last !== undefined ? last.id : null }
            }
          ))
        .handle("cancel", ({ path }) => Effect.map(engine.cancel(path.id), (cancelled) => ({ id: path.id, cancelled })))
        .handle("retry", ({ path }) =>
          Effect.flatMap(engine.retry(path.id), (retried) =>
            Effect.zipRight(retried ? keepAlive : Effect.void, Effect.succeed({ id: path.id, retried }))))
        .handleRaw("events", ({ path }) =>
          Effect.flatMap(engine.get(path.id), (record) => {
            if (Option.isNone(record)) return notFound(path.id)
            // a stream of a finished task would only say `end`, and an EventSource reconnects
            // after every end of stream: 204 is what makes it stop (the HTML spec's rule)
            if (isTerminal(record.value.status)) return Effect.succeed(HttpServerResponse.empty({ status: 204 }))
            return Effect.succeed(eventStream(ServerSentEvents.fromRecords(engine.watch(path.id), sse)))
          }))
        .handleRaw("allEvents", () => Effect.succeed(eventStream(ServerSentEvents.fromRecords(engine.changes, sse))))
    }))

const metricsLive = HttpApiBuilder.group(TaskApi, "metrics", (handlers) =>
  Effect.gen(function*() {
    const engine = yield* TaskEngine
    return handlers
      .handleRaw("prometheus", () =>
        Effect.map(Prometheus.snapshot, (text) =>
          HttpServerResponse.text(text, { contentType: Prometheus.contentType, headers: { "cache-control": "no-store" } })))
      .handle("stats", () => engine.metrics)
  }))

const dashboardLive = (enabled: boolean) =>
  HttpApiBuilder.group(TaskApi, "dashboard", (handlers) =>
    handlers.handleRaw("page", () =>
      enabled
        ? Effect.succeed(HttpServerResponse.text(Dashboard.html, {
          contentType: "text/html; charset=utf-8",
          headers: { "content-security-policy": Dashboard.contentSecurityPolicy, "cache-control": "no-store" }
        }))
        : Effect.succeed(HttpServerResponse.empty({ status: 404 }))))

/**
 * Headers every answer gets: `WWW-Authenticate` on a 401, `X-Content-Type-Options: nosniff`.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  // a pre-response handler, because the platform sends the response before outer middleware
  // could map it
  Effect.zipRight(
    HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(
        response.status === 401
          ? HttpServerResponse.setHeaders(response, {
            "x-content-type-options": "nosniff",
            "www-authenticate": "Bearer realm=\"effect-tasks\""
          })
          : HttpServerResponse.setHeader(response, "x-content-type-options", "nosniff")
      )
    ),
    app
  )

/**
 * The API over the `TaskEngine` in context: handlers, authentication and `GET /openapi.json`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<HttpApi.Api, never, TaskEngine> =>
  HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }).pipe(
    Layer.provideMerge(HttpApiBuilder.api(TaskApi)),
    Layer.provide(tasksLive(options)),
    Layer.provide(metricsLive),
    Layer.provide(dashboardLive(options.dashboard ?? true)),
    Layer.provide(BearerAuth.layer(options.token))
  )
