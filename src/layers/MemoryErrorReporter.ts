/**
 * The in-memory `ErrorReporter`: keeps the most recent reports (a bounded buffer) and logs each
 * one as a warning. The default when no `ErrorReporter` layer is provided.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Ref } from "effect"
import type { ErrorReport } from "../services/ErrorReporter.js"
import { ErrorReporter } from "../services/ErrorReporter.js"

/**
 * Builds a memory reporter keeping at most `capacity` reports (default 1,000), oldest dropped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (capacity = 1_000): Effect.Effect<ErrorReporter> =>
  Effect.map(Ref.make<ReadonlyArray<ErrorReport>>([]), (ref) =>
    ErrorReporter.of({
      report: (report) =>
        Ref.update(ref, (reports) => {
          const next = reports.length >= capacity ? reports.slice(reports.length - capacity + 1) : reports.slice()
          next.push(report)
          return next
        }).pipe(
          Effect.zipRight(
            Effect.logWarning(`task ${report.context.task} ${report.taskId} failed: ${report.error}`).pipe(
              Effect.annotateLogs({
                taskId: report.taskId,
                task: report.context.task,
                attempt: report.context.attempt,
                final: report.context.final
              })
            )
          )
        ),
      reports: Ref.get(ref)
    }))

/**
 * A memory reporter with the default capacity.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ErrorReporter> = Layer.effect(ErrorReporter, make())
