/**
 * The execute step: run one claimed attempt. The payload is decoded with the task's Schema and
 * the handler runs on the worker's own fiber, with the attempt in the worker's slot of
 * `Progress.currentTask`; its
 * `Exit` goes on to the settle step. The worker is uninterruptible except inside the attempt, so
 * `cancel`, a lost lease and shutdown stop an attempt by interrupting its worker (which is then
 * replaced). Forking a fiber per attempt instead measured 35-65 us an attempt here.
 *
 * @since 0.1.0
 * @internal
 */
import type { Fiber } from "effect"
import { Effect, Either, Exit } from "effect"
import { PayloadInvalid } from "../services/TaskError.js"
import type { ClaimedTask } from "../services/TaskStore.js"
import { firstIssue } from "./Codec.js"
import type { Engine, Registered, Running } from "./EngineState.js"
import { addRunning } from "./EngineState.js"
import * as Progress from "./Progress.js"

/** One finished attempt, ready to settle. @internal */
export interface Attempt {
  readonly record: ClaimedTask
  readonly registered: Registered
  readonly running: Running
  /** The decoded payload, when it decoded. */
  readonly payload: unknown
  readonly exit: Exit.Exit<unknown, unknown>
}

/** Runs the attempt of a claimed record; never fails. @internal */
export const execute = (
  engine: Engine,
  registered: Registered,
  record: ClaimedTask,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  slot: Progress.WorkerSlot,
  interruptible: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
): Effect.Effect<Attempt> => {
    const { state, store } = engine
    const running: Running = {
      record,
      startedMillis: engine.clock.unsafeCurrentTimeMillis(),
      fiber,
      stop: undefined,
      behind: undefined
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
    slot.current = current
    // one continuation takes either outcome: `Effect.map(Effect.exit(...))` would be three steps
    return Effect.matchCause(interruptible(registered.run(payload, current)), {
      onFailure: (cause): Attempt => ({ record, registered, running, payload, exit: Exit.failCause(cause) }),
      onSuccess: (value): Attempt => ({ record, registered, running, payload, exit: Exit.succeed(value) })
    })
}
