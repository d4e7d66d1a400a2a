/**
 * The demo as one Effect program over a given `TaskStore` layer: it builds the engine and the
 * handlers on that store, shows the tasks while the scenario runs, prints the report, and fails
 * with `DemoFailed` when a task did not end as expected.
 *
 * @since 0.1.0
 */
import { Data, Effect, Layer, Logger } from "effect"
import { ErrorReporter, TaskEngine, type TaskStore } from "../../src/index.js"
import * as Report from "./Report.js"
import * as Scenario from "./Scenario.js"
import * as Screen from "./Screen.js"
import { HandlersLive } from "./Tasks.js"
import { World } from "./World.js"

/**
 * Some task or check did not end as expected.
 *
 * @since 0.1.0
 * @category errors
 */
export class DemoFailed extends Data.TaggedError("DemoFailed")<{ readonly problems: ReadonlyArray<string> }> {
  override get message(): string {
    return `${this.problems.length} task(s) or check(s) did not end as expected:\n  ${this.problems.join("\n  ")}`
  }
}

const maxConcurrent = 4

/**
 * Runs the demo on `store`; `storeName` is shown in the title.
 *
 * @since 0.1.0
 * @category demo
 */
export const run = <E>(options: {
  readonly store: Layer.Layer<TaskStore.TaskStore, E>
  readonly storeName: string
}): Effect.Effect<void, E | DemoFailed> =>
  Effect.gen(function*() {
    const screen = yield* Screen.make({
      tty: process.stdout.isTTY === true,
      title: `effect-tasks demo · ${options.storeName} · maxConcurrent ${maxConcurrent}`
    })
    const AppLayer = HandlersLive.pipe(
      Layer.provideMerge(
        TaskEngine.layer({
          maxConcurrent,
          // cleanup-finished deletes what finished more than 2 s ago (7 days by default);
          // the engine's own hourly cleanup never comes round in a demo this short
          cleanup: { retention: "2 seconds" },
          shutdownTimeout: "2 seconds"
        })
      ),
      Layer.provideMerge(Layer.mergeAll(options.store, ErrorReporter.layerMemory, World.Default)),
      // logs of the program, the handlers and the engine go to the screen, above the bars
      Layer.provide(Logger.replace(Logger.defaultLogger, screen.logger))
    )
    const problems = yield* Effect.gen(function*() {
      yield* screen.follow
      const outcome = yield* Scenario.run.pipe(
        // an engine error here is a bug in the demo or the engine: report it as a failed run
        Effect.mapError((error) => new DemoFailed({ problems: [`${error._tag}: ${error.message}`] })),
        Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new DemoFailed({ problems: ["timed out after 30 s"] }) })
      )
      yield* screen.stop
      const engine = yield* TaskEngine.TaskEngine
      const metrics = yield* engine.metrics
      const reports = yield* Effect.flatMap(ErrorReporter.ErrorReporter, (reporter) => reporter.reports)
      return yield* Report.print(outcome, metrics, reports)
    }).pipe(
      Effect.ensuring(screen.stop),
      Effect.provide(AppLayer)
    )
    if (problems.length > 0) return yield* new DemoFailed({ problems })
  }).pipe(Effect.scoped)
