/**
 * The execute step: run one claimed attempt. The payload is decoded with the task's Schema and
 * the handler runs on the worker's own fiber, with the attempt in the worker's slot of
 * `Progress.currentTask`; its `Exit` goes on to the settle step. The worker is uninterruptible
 * except inside the attempt, so `cancel`, a lost lease and shutdown stop an attempt by
 * interrupting its worker (which is then replaced). Forking a fiber per attempt instead measured
 * 35-65 us an attempt here.
 *
 * @since 0.1.0
 * @internal
 */
import type { Cause, Fiber } from "effect"
import { Effect, Either, Exit } from "effect"
import { PayloadInvalid } from "../services/TaskError.js"
import type { ClaimedTask, TaskStore } from "../services/TaskStore.js"
import { firstIssue } from "./Codec.js"
import type { Engine, Registered, Running } from "./EngineState.js"
import { addRunning } from "./EngineState.js"
import type * as Progress from "./Progress.js"

/** One finished attempt, ready to settle. @internal */
export interface Attempt {
  readonly record: ClaimedTask
  readonly registered: Registered
  readonly running: Running
  /** The decoded payload, when it decoded. */
  readonly payload: unknown
  readonly exit: Exit.Exit<unknown, unknown>
}

/**
 * The attempt a handler's fibers see through `Progress` (and the handler as its `TaskInfo`): its
 * progress goes to the store, which stays out of sight (a `#private` field: not enumerated, not
 * in `JSON.stringify`).
 */
class CurrentAttempt implements Progress.CurrentTask {
  units = 0
  readonly #store: TaskStore
  readonly #owner: string
  constructor(
    readonly id: ClaimedTask["id"],
    readonly name: string,
    readonly attempt: number,
    store: TaskStore,
    owner: string
  ) {
    this.#store = store
    this.#owner = owner
  }
  report(percent: number): Effect.Effect<void> {
    return this.#store.setProgress(this.id, this.#owner, percent).pipe(
      Effect.catchAll((error) => Effect.logDebug(`progress not recorded: ${error.reason}`))
    )
  }
}

/**
 * Builds a worker's execute step: `run(registered, record)` runs the attempt on `fiber`, then
 * goes on with `then(attempt)`, in one continuation. What the handler's outcome needs is kept in
 * the runner between the two (a worker runs one attempt at a time), so that an attempt costs no
 * closures of its own. Never fails. @internal
 */
export const runner = <A>(
  engine: Engine,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  slot: Progress.WorkerSlot,
  interruptible: <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>,
  then: (attempt: Attempt) => Effect.Effect<A>
): (registered: Registered, record: ClaimedTask) => Effect.Effect<A> => {
  const { state, store } = engine
  let record: ClaimedTask
  let registered: Registered
  let running: Running
  let payload: unknown
  const outcome = {
    onFailure: (cause: Cause.Cause<unknown>) =>
      then({ record, registered, running, payload, exit: Exit.failCause(cause) }),
    onSuccess: (value: unknown) => then({ record, registered, running, payload, exit: Exit.succeed(value) })
  }
  return (handler, claimed) => {
    record = claimed
    registered = handler
    running = {
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
      payload = undefined
      return then({
        record,
        registered,
        running,
        payload,
        exit: Exit.fail(new PayloadInvalid({ task: record.name, path, issue }))
      })
    }
    payload = decoded.right
    const current = new CurrentAttempt(record.id, record.name, record.attempt, store, state.owner)
    slot.current = current
    return Effect.matchCauseEffect(interruptible(registered.run(payload, current)), outcome)
  }
}
