/**
 * The worker pool's bookkeeping: which workers are idle (parked) and how many claims are in
 * flight. The only writer of these fields.
 *
 * A worker is *claiming* (counted in `claiming`), *running* (its attempt in `Running`), or *idle*
 * (its resume callback in `parked`). Work that may have appeared (a submit, a due retry, a store
 * wake-up, a registration) bumps `generation` and resumes parked workers: claiming again. A
 * claim that finds nothing parks the worker, unless `generation` moved while it was in flight.
 * `restAfterClaim`: a store wake-up resumed one worker; the others are resumed when its claim
 * comes back.
 *
 * @since 0.2.0
 * @internal
 */
import { Effect } from "effect"

/** @internal */
export interface WorkerPoolState {
  /**
   * The resume callbacks of parked workers. Parking is `Effect.async`, not a `Queue.take`: a take
   * on an empty queue allocates a `Deferred`, which measured several microseconds in Effect 3.22.
   */
  readonly parked: Array<(effect: Effect.Effect<void>) => void>
  /** Bumped whenever work may have appeared, so a worker never parks on stale news. */
  generation: number
  /** Claims sent to the store and not yet answered: a claimed task is in neither place meanwhile. */
  claiming: number
  /** A wake-up woke one idle worker; the others are woken when the next claim comes back. */
  restAfterClaim: boolean
}

/** @internal */
export const make = (): WorkerPoolState => ({ parked: [], generation: 0, claiming: 0, restAfterClaim: false })

/** Wakes up to `n` parked workers (all of them for `Infinity`). @internal */
export const wakeWorkers = (state: WorkerPoolState, n: number): void => {
  state.generation++
  for (let k = Math.min(n, state.parked.length); k > 0; k--) state.parked.pop()!(Effect.void)
}

/** A store wake-up: one worker now, the others when its claim comes back. @internal */
export const wakeOneThenRest = (state: WorkerPoolState): void => {
  wakeWorkers(state, 1)
  if (state.parked.length > 0) state.restAfterClaim = true
}

/** A worker parks; the returned canceler takes it out again (when its fiber is interrupted). @internal */
export const park = (state: WorkerPoolState, resume: (effect: Effect.Effect<void>) => void): Effect.Effect<void> => {
  state.parked.push(resume)
  return Effect.sync(() => {
    const i = state.parked.indexOf(resume)
    if (i >= 0) state.parked.splice(i, 1)
  })
}

/** A claim was sent; gives the generation it was sent in. @internal */
export const claimSent = (state: WorkerPoolState): number => {
  state.claiming++
  return state.generation
}

/** A claim came back: after a wake-up of one, the other workers go now. @internal */
export const claimAnswered = (state: WorkerPoolState): void => {
  state.claiming--
  if (state.restAfterClaim) {
    state.restAfterClaim = false
    wakeWorkers(state, state.parked.length)
  }
}
