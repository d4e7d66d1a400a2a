/**
 * The execute step: run one claimed attempt. The payload is decoded with the task's Schema, the
 * handler runs in a child fiber of the worker (so that `cancel` and shutdown can interrupt the
 * attempt alone), with the attempt in `Progress.currentTask`, and its `Exit` comes back to the
 * worker for the settle step.
 *
 * @since 0.1.0
 * @internal
 */
import { Effect, Either, Exit, Fiber, FiberRef } from "effect"
import { PayloadInvalid } from "../services/TaskError.js"
import type { TaskRecord } from "../services/TaskRecord.js"
import { firstIssue } from "./Codec.js"
import type { Engine, Registered, Running } from "./EngineState.js"
import { addRunning } from "./EngineState.js"
import * as Progress from "./Progress.js"

/** One finished attempt, ready to settle. @internal */
export interface Attempt {
  readonly record: TaskRecord
  readonly registered: Registered
  readonly running: Running
  /** The decoded payload, when it decoded. */
  readonly payload: unknown
  readonly exit: Exit.Exit<unknown, unknown>
}

/** Runs the attempt of a claimed record; never fails. @internal */
export const execute = (engine: Engine, registered: Registered, record: TaskRecord): Effect.Effect<Attempt> =>
  Effect.suspend(() => {
    const { state, store } = engine
    const running: Running = {
      record,
      startedMillis: engine.clock.unsafeCurrentTimeMillis(),
      fiber: undefined,
      stop: undefined
    }
    addRunning(state, running)
    const decoded = registered.codecs.payload.decode(record.payload)
    if (Either.isLeft(decoded)) {
      const { issue, path } = firstIssue(decoded.left)
      return Effect.succeed<Attempt>({
        record,
        registered,
        running,
        payload: undefined,
        exit: Exit.fail(new PayloadInvalid({ task: record.name, path, issue }))
      })
    }
    const payload = decoded.right
    const owner = state.owner
    const current: Progress.CurrentTask = {
      id: record.id,
      name: record.name,
      attempt: record.attempt,
      report: (percent) =>
        store.setProgress(record.id, owner, percent).pipe(
          Effect.catchAll((error) => Effect.logDebug(`progress not recorded: ${error.reason}`))
        ),
      units: 0
    }
    const attempt = Effect.zipRight(FiberRef.set(Progress.currentTask, current), registered.run(payload, current))
    return Effect.flatMap(Effect.fork(Effect.interruptible(attempt)), (fiber) => {
      running.fiber = fiber
      // a cancel or shutdown that came before the fiber existed
      const early = running.stop !== undefined ? Fiber.interruptFork(fiber) : Effect.void
      return Effect.zipRight(
        early,
        Effect.map(Fiber.await(fiber), (exit): Attempt => ({ record, registered, running, payload, exit }))
      )
    })
  })
