/**
 * The `TaskEngine` module: the engine's service, its options and the layer that runs it. The
 * engine itself is built in `engine/` over the ports; this public module adds the defaults a
 * user expects, in-memory metrics and error reports where the context has none, so that the
 * engine never imports an adapter.
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Effect, Layer, Option } from "effect"
import * as Engine from "./engine/TaskEngine.js"
import type { Options, TaskEngine as Service } from "./engine/TaskEngine.js"
import { TaskEngine as Tag } from "./engine/TaskEngine.js"
import * as MemoryErrorReporter from "./layers/MemoryErrorReporter.js"
import * as MemoryTaskMetrics from "./layers/MemoryTaskMetrics.js"
import { ErrorReporter } from "./services/ErrorReporter.js"
import { TaskMetrics } from "./services/TaskMetrics.js"
import type { TaskStore } from "./services/TaskStore.js"

export type { Options, SubmitError, SubmitOptions } from "./engine/TaskEngine.js"
export { TaskEngine } from "./engine/TaskEngine.js"

/**
 * Builds an engine in the current scope: requires a `TaskStore`; uses the `ErrorReporter` and
 * `TaskMetrics` in context, or in-memory ones.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, TaskStore | Scope.Scope> =>
  Effect.gen(function*() {
    const metrics = yield* Option.match(yield* Effect.serviceOption(TaskMetrics), {
      onNone: () => MemoryTaskMetrics.make,
      onSome: Effect.succeed
    })
    const reporter = yield* Option.match(yield* Effect.serviceOption(ErrorReporter), {
      onNone: () => MemoryErrorReporter.make(),
      onSome: Effect.succeed
    })
    return yield* Engine.make(options).pipe(
      Effect.provideService(TaskMetrics, metrics),
      Effect.provideService(ErrorReporter, reporter)
    )
  })

/**
 * The engine as a layer: requires a `TaskStore`; provides `TaskEngine`. Handlers register with
 * `Definition.toLayer`, provided on top of it.
 *
 * @example
 * import { Effect, Layer, Schema } from "effect"
 * import { Task, TaskEngine, TaskStore } from "effect-tasks"
 *
 * const Hello = Task.make("hello", { payload: Schema.Struct({ name: Schema.String }), success: Schema.String })
 * const HelloLive = Hello.toLayer(({ name }) => Effect.succeed(`hello ${name}`))
 *
 * const AppLayer = HelloLive.pipe(
 *   Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 5 })),
 *   Layer.provide(TaskStore.layerMemory)
 * )
 *
 * const program = Effect.gen(function*() {
 *   const engine = yield* TaskEngine.TaskEngine
 *   const id = yield* engine.submit(Hello, { name: "world" })
 *   return yield* engine.await(Hello, id)
 * }).pipe(Effect.provide(AppLayer))
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Service, never, TaskStore> =>
  Layer.scoped(Tag, make(options))
