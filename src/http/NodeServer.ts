/**
 * The HTTP API and dashboard on a Node HTTP server (@effect/platform-node). Not re-exported from
 * the package's index, so that edge bundles never load Node's `http`: import it as
 * `effect-tasks/http/NodeServer`.
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import type { ServeError } from "@effect/platform/HttpServerError"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import type { TaskEngine } from "../engine/TaskEngine.js"
import * as TaskHttp from "./TaskHttp.js"

/**
 * Options of the server: those of the API, and where to listen. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends TaskHttp.Options {
  /** The port; 0 picks a free one [3000]. */
  readonly port?: number | undefined
  /** The interface to listen on ["127.0.0.1"]. */
  readonly host?: string | undefined
}

const loopback = new Set(["127.0.0.1", "::1", "localhost"])

/**
 * Serves the API over the `TaskEngine` in context for as long as the layer lives; logs the
 * address (also given by the `HttpServer` it provides), and warns when it listens beyond loopback
 * without a token.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<HttpServer.HttpServer, ServeError, TaskEngine> => {
  const host = options.host ?? "127.0.0.1"
  const warning = options.token === undefined && !loopback.has(host)
    ? Layer.effectDiscard(
      Effect.logWarning(`the task API listens on ${host} without a token: anyone who reaches it can submit and cancel tasks`)
    )
    : Layer.empty
  return HttpApiBuilder.serve(TaskHttp.middleware).pipe(
    Layer.provide(TaskHttp.layer(options)),
    HttpServer.withLogAddress,
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port ?? 3000, host })),
    Layer.merge(warning)
  )
}
