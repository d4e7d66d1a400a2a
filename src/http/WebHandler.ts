/**
 * The HTTP API and dashboard as a web handler, `(Request) => Promise<Response>`, for Deno,
 * Supabase Edge Functions, Cloudflare Workers, Bun and anything else that speaks the Fetch API.
 * The handler owns a runtime built from your layer (the engine, its store and task handlers);
 * `dispose` closes it, and with it the engine, which hands unfinished tasks back to the store. On
 * runtimes that announce their end with `beforeunload`, that happens by itself.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import type { Context } from "effect"
import { Layer } from "effect"
import type { TaskEngine } from "../engine/TaskEngine.js"
import { disposeOnUnload } from "../edge/EdgeRuntime.js"
import * as TaskHttp from "./TaskHttp.js"

/**
 * Options of the web handler: those of the API, and two of its own. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends TaskHttp.Options {
  /**
   * A path prefix to strip before routing, such as `"/process-data"` for a Supabase function
   * named `process-data` (its requests arrive as `/process-data/...`); also the OpenAPI
   * document's server URL [none].
   */
  readonly basePath?: string | undefined
  /** Dispose the handler's runtime when `globalThis` dispatches `beforeunload` [true]. */
  readonly disposeOnUnload?: boolean | undefined
}

/**
 * A running web handler.
 *
 * @since 0.1.0
 * @category models
 */
export interface WebHandler {
  /**
   * Answers one request. `context` adds services for this request only, such as a per-request
   * `WaitUntil` (`WaitUntil.contextOf(ctx)` on Cloudflare).
   */
  readonly handler: (request: Request, context?: Context.Context<never> | undefined) => Promise<Response>
  /** Closes the runtime: the engine shuts down and hands its unfinished tasks back. */
  readonly dispose: () => Promise<void>
}

const normalizeBase = (basePath: string | undefined): string | undefined => {
  if (basePath === undefined || basePath === "" || basePath === "/") return undefined
  const withSlash = basePath.startsWith("/") ? basePath : `/${basePath}`
  return withSlash.endsWith("/") ? withSlash.slice(0, -1) : withSlash
}

/**
 * The request with `basePath` stripped from its URL's path, or `undefined` when the path is not
 * under `basePath`. (The rewrite happens before the request enters Effect, because the platform's
 * web adapter answers through the original request object.)
 *
 * @since 0.1.0
 * @category routing
 */
export const stripBasePath = (basePath: string | undefined, request: Request): Request | undefined => {
  const base = normalizeBase(basePath)
  if (base === undefined) return request
  const url = new URL(request.url)
  if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return undefined
  url.pathname = url.pathname.slice(base.length) || "/"
  return new Request(url, request)
}

/**
 * Builds the web handler over `app`, a layer providing the `TaskEngine` (and, optionally, a
 * `WaitUntil`, so that accepted work keeps the runtime alive).
 *
 * @example
 * import { Effect, Layer, Schema } from "effect"
 * import { EdgeRuntime, Task, TaskStore, WaitUntil, WebHandler } from "effect-tasks"
 *
 * const Hello = Task.make("hello", { payload: Schema.Struct({ name: Schema.String }) })
 * const HelloLive = Hello.toLayer(({ name }) => Effect.log(`hello ${name}`))
 *
 * const AppLayer = HelloLive.pipe(
 *   Layer.provideMerge(EdgeRuntime.layer({ maxConcurrent: 5 })),
 *   Layer.provide(TaskStore.layerMemory),
 *   Layer.merge(WaitUntil.layerSupabase)
 * )
 *
 * const { handler } = WebHandler.make(AppLayer, { basePath: "/hello" })
 * // Deno.serve((request) => handler(request))
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E>(app: Layer.Layer<TaskEngine, E>, options: Options = {}): WebHandler => {
  const web = HttpApiBuilder.toWebHandler(
    Layer.mergeAll(TaskHttp.layer(options), HttpServer.layerContext).pipe(Layer.provideMerge(app)),
    { middleware: TaskHttp.middleware }
  )
  const removeListener = options.disposeOnUnload === false ? () => {} : disposeOnUnload(web.dispose)
  return {
    handler: (request, context) => {
      const routed = stripBasePath(options.basePath, request)
      return routed === undefined
        ? Promise.resolve(new Response(null, { status: 404 }))
        : web.handler(routed, context)
    },
    dispose: () => {
      removeListener()
      return web.dispose()
    }
  }
}
