/**
 * The HTTP API's implementation over a `TaskEngine`: the handlers of `TaskApi`, the bearer
 * authentication, `GET /openapi.json`, and the response headers every answer gets. `layer`
 * gives what `HttpApiBuilder.serve` (Node) or `HttpApiBuilder.toWebHandler` (Deno, edge
 * functions) needs; `WebHandler` and `NodeServer` use it.
 *
 * Status codes: 202 accepted submit; 204 the events of a finished task; 400 `PayloadInvalid` (its
 * `path` names the bad field), `MalformedBody`, `HttpApiDecodeError`; 401 `Unauthorized`; 403
 * `CrossSiteRequest`; 404 `UnknownTask`, `TaskNotFound`, `NotFound` (no route); 405
 * `MethodNotAllowed` (with `Allow`); 409 `DuplicateTask` (its `id` is the existing task); 413
 * `PayloadTooLarge`; 415 `UnsupportedMediaType`; 429 `QueueFull`; 500 `InternalServerError`
 * (logged); 503 `StoreUnavailable`, `EngineClosed`. Every error answer is JSON; values it
 * repeats are cut at `maxEcho` characters.
 *
 * @since 0.1.0
 */
import type { HttpApi } from "@effect/platform"
import {
  HttpApiBuilder,
  HttpApp,
  HttpMiddleware,
  HttpRouter,
  HttpServerRequest,
  HttpServerResponse,
  OpenApi
} from "@effect/platform"
import type { Redacted } from "effect"
import { Cause, Duration, Effect, Layer, Option, Schema } from "effect"
import { TaskEngine } from "../engine/TaskEngine.js"
import type { SubmitOptions } from "../engine/TaskEngine.js"
import { TaskNotFound } from "../services/TaskError.js"
import { isTerminal } from "../services/TaskRecord.js"
import * as BearerAuth from "./BearerAuth.js"
import * as Dashboard from "./Dashboard.js"
import { CrossSiteRequest, InternalServerError, MethodNotAllowed, NotFound } from "./HttpError.js"
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
  /**
   * The path prefix the API is reached under (the web handler strips it before routing): the
   * OpenAPI document's `servers` entry [none: `"/"`].
   */
  readonly basePath?: string | undefined
  /**
   * Browser requests made by a page of another site (`Sec-Fetch-Site: cross-site`, or an `Origin`
   * whose host is not the request's `Host`): `"refuse"` answers them 403 `CrossSiteRequest`;
   * `"allow"` lets every one through (a gateway in front decides) ["refuse"]. Navigations (a
   * link to the dashboard) always pass.
   */
  readonly crossSite?: "refuse" | "allow" | undefined
  /**
   * Origins whose pages may call the API (`"https://app.example.com"`): they pass the cross-site
   * check and get CORS headers; preflight requests are answered [none].
   */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
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
      const submit = ({ headers, path, request, urlParams }: {
        readonly headers: { readonly "idempotency-key"?: string | undefined }
        readonly path: { readonly name: string }
        readonly request: HttpServerRequest.HttpServerRequest
        readonly urlParams: { readonly priority?: number | undefined; readonly delayMs?: number | undefined }
      }) =>
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
        })
      return handlers
        .handleRaw("submit", submit)
        .handleRaw("submitAlias", submit)
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
        : Effect.succeed(notFoundResponse("The dashboard is turned off (dashboard: false)"))))

const serverOf = (basePath: string | undefined) => {
  const trimmed = (basePath ?? "").replace(/\/+$/, "")
  const url = trimmed === "" ? "/" : trimmed.startsWith("/") ? trimmed : `/${trimmed}`
  return { url, description: "this server" }
}

// -- the edges: cross-site requests, unknown routes, wrong methods, failures ------------------

/**
 * How much of a value an error body repeats: a bad value is named, never sent back whole.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxEcho = 200

const clip = (text: string): string => (text.length <= maxEcho ? text : `${text.slice(0, maxEcho)}…`)

const EdgeError = Schema.Union(NotFound, MethodNotAllowed, InternalServerError)

/** An error answered here, outside the API's handlers: encoded with its own Schema. */
const errorBody = (error: typeof EdgeError.Type, status: number, headers?: Record<string, string>) =>
  HttpServerResponse.unsafeJson(Schema.encodeSync(EdgeError)(error), { status, headers })

const notFoundResponse = (message: string) => errorBody(new NotFound({ message: clip(message) }), 404)

const originHost = (origin: string): URL | undefined => {
  try {
    return new URL(origin)
  } catch {
    return undefined
  }
}

const hostsOf = (request: HttpServerRequest.HttpServerRequest, protocol: string): ReadonlyArray<string> => {
  const hosts: Array<string> = []
  const add = (host: string | undefined) => {
    if (host === undefined || host === "") return
    try {
      hosts.push(new URL(`${protocol}//${host.split(",")[0]!.trim()}`).host)
    } catch {
      // not a host
    }
  }
  add(request.headers["host"])
  add(request.headers["x-forwarded-host"])
  // a web handler's request URL is absolute (the platform has no Host header to read then)
  const absolute = originHost(request.originalUrl)
  if (absolute !== undefined) hosts.push(absolute.host)
  return hosts
}

/**
 * Why a request is refused as cross-site, or `undefined` when it may pass: an `Origin` in
 * `allowedOrigins` passes, so does a navigation (GET or HEAD with `Sec-Fetch-Mode: navigate`);
 * then `Sec-Fetch-Site` decides (`same-origin` and `none` pass, `same-site` and `cross-site` are
 * refused); without it, an `Origin` whose host is not the request's `Host` is refused. A request
 * without these headers (curl, a server) is not a browser's and passes.
 *
 * @since 0.1.0
 * @category edges
 */
export const crossSiteReason = (
  request: HttpServerRequest.HttpServerRequest,
  allowedOrigins: ReadonlySet<string>
): string | undefined => {
  const origin = request.headers["origin"]
  const parsed = origin === undefined ? undefined : originHost(origin)
  if (parsed !== undefined && allowedOrigins.has(parsed.origin)) return undefined
  const method = request.method
  if ((method === "GET" || method === "HEAD") && request.headers["sec-fetch-mode"] === "navigate") return undefined
  // the browser's own verdict comes first: it compared the page with the URL it requested,
  // which a proxy rewriting Host cannot confuse
  const site = request.headers["sec-fetch-site"]
  if (site === "same-origin" || site === "none") return undefined
  if (site === "cross-site" || site === "same-site") return `Sec-Fetch-Site: ${site}`
  // a browser without Fetch Metadata: its Origin against the Host
  if (origin === undefined) return undefined
  if (parsed === undefined || parsed.origin === "null") return "Origin: null"
  if (!hostsOf(request, parsed.protocol).includes(parsed.host)) return "the Origin's host is not this server's Host"
  return undefined
}

const normalizeOrigin = (origin: string): string => originHost(origin)?.origin ?? origin

interface Route {
  readonly method: string
  readonly pattern: RegExp
}

const routes: ReadonlyArray<Route> = (() => {
  const out: Array<Route> = [{ method: "GET", pattern: /^\/openapi\.json$/ }]
  for (const group of Object.values(TaskApi.groups)) {
    for (const endpoint of Object.values(group.endpoints)) {
      const source = endpoint.path.split("/").map((part: string) =>
        part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      ).join("/")
      out.push({ method: endpoint.method, pattern: new RegExp(`^${source}$`) })
    }
  }
  return out
})()

/**
 * The methods the API answers on a path, for the `Allow` header of a 405 (empty: no such path).
 *
 * @since 0.1.0
 * @category edges
 */
export const allowedMethods = (path: string): ReadonlyArray<string> => {
  const methods = new Set<string>()
  for (const route of routes) if (route.pattern.test(path)) methods.add(route.method)
  return Array.from(methods).sort()
}

const pathOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const url = request.url
  const start = url.startsWith("/") ? 0 : Math.max(0, url.indexOf("/", url.indexOf("//") + 2))
  const end = url.indexOf("?", start)
  return url.slice(start, end === -1 ? undefined : end) || "/"
}

const routeNotFound = (request: HttpServerRequest.HttpServerRequest) => {
  const path = pathOf(request)
  const methods = allowedMethods(path)
  if (methods.length === 0 || methods.includes(request.method)) {
    return notFoundResponse(`No route for ${request.method} ${path}`)
  }
  return errorBody(new MethodNotAllowed({ message: clip(`${path} answers ${methods.join(", ")}, not ${request.method}`) }), 405, {
    allow: methods.join(", ")
  })
}

const isRouteNotFound = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "RouteNotFound"

/**
 * A failure no one answered (a defect, an error the API cannot encode): logged with the request,
 * answered 500 with a JSON body, never an empty one.
 */
const internalError = (request: HttpServerRequest.HttpServerRequest, cause: Cause.Cause<unknown>) =>
  Effect.as(
    Effect.logError(`${request.method} ${clip(pathOf(request))} failed`, cause),
    errorBody(new InternalServerError({ message: "The server failed on this request; the failure is logged" }), 500)
  )

/** Whether the platform must see the cause as it is: an interruption, a typed error the API encodes, or a response sent as a defect. */
const passThrough = (cause: Cause.Cause<unknown>): boolean =>
  Cause.isInterruptedOnly(cause) ||
  Option.isSome(Cause.failureOption(cause)) ||
  Option.exists(Cause.dieOption(cause), HttpServerResponse.isServerResponse)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const clipStrings = (value: unknown, depth: number): unknown => {
  if (typeof value === "string") return clip(value)
  if (depth > 8 || typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map((item) => clipStrings(item, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) out[key] = clipStrings(item, depth + 1)
  return out
}

/** An error answer repeats at most `maxEcho` characters of any value (1 MB in is not 1 MB out). */
const clipErrorBody = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const body = response.body
  if (response.status < 400 || body._tag !== "Uint8Array" || body.body.length <= maxEcho) return response
  if (!(body.contentType.includes("json"))) return response
  try {
    const clipped = JSON.stringify(clipStrings(JSON.parse(decoder.decode(body.body)), 0))
    return HttpServerResponse.uint8Array(encoder.encode(clipped), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      cookies: response.cookies,
      contentType: body.contentType
    })
  } catch {
    return response
  }
}

const edges = (options: Options) => {
  const allowed = new Set((options.allowedOrigins ?? []).map(normalizeOrigin))
  const refuse = options.crossSite !== "allow"
  const cors = allowed.size === 0 ? undefined : HttpMiddleware.cors({
    allowedOrigins: Array.from(allowed),
    allowedMethods: ["GET", "POST"],
    allowedHeaders: ["authorization", "content-type", "idempotency-key", "last-event-id"],
    maxAge: 600
  })
  return HttpApiBuilder.middleware(TaskApi, (app) => {
    const inner = cors === undefined ? app : cors(app)
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const reason = refuse ? crossSiteReason(request, allowed) : undefined
      if (reason !== undefined) {
        return Effect.fail(new CrossSiteRequest({ origin: clip(request.headers["origin"] ?? ""), reason }))
      }
      return Effect.zipRight(
        HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(clipErrorBody(response))),
        Effect.catchAllCause(inner, (cause) => {
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure) && isRouteNotFound(failure.value)) return Effect.succeed(routeNotFound(request))
          if (passThrough(cause)) return Effect.failCause(cause)
          return internalError(request, cause)
        })
      )
    })
  })
}

/**
 * Headers every answer gets: `WWW-Authenticate` on a 401, `X-Content-Type-Options: nosniff`; and
 * a failure nothing else answered is logged and answered 500 with a JSON body.
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
    Effect.catchAllCause(app, (cause) =>
      Cause.isInterruptedOnly(cause) || Option.exists(Cause.dieOption(cause), HttpServerResponse.isServerResponse)
        ? Effect.failCause(cause)
        : Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => internalError(request, cause)))
  )

/**
 * The API over the `TaskEngine` in context: handlers, authentication and `GET /openapi.json`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<HttpApi.Api, never, TaskEngine> =>
  HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }).pipe(
    Layer.provideMerge(HttpApiBuilder.api(TaskApi.annotate(OpenApi.Servers, [serverOf(options.basePath)]))),
    Layer.provide(tasksLive(options)),
    Layer.provide(metricsLive),
    Layer.provide(dashboardLive(options.dashboard ?? true)),
    Layer.provide(BearerAuth.layer(options.token)),
    Layer.provide(edges(options)),
    // path parameters as long as a task name may be (and longer, answered by the handlers)
    Layer.provide(HttpRouter.setRouterConfig({ maxParamLength: 1000 }))
  )
