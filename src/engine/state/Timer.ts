/**
 * The timer fiber's signals. The only writer of these fields.
 *
 * The timer is *sleeping* until the next `runAt` or *waiting* to be re-armed (`timer` holds its
 * resume callback); `rearm` resumes it, or leaves `rearmed` for it when it is not waiting.
 * `dueWhileBusy`: the timer saw due work while every worker was busy; the first worker to park
 * afterwards (the due work taken) re-arms it.
 *
 * @since 0.2.0
 * @internal
 */
import { Effect } from "effect"

/** @internal */
export interface TimerState {
  /** The timer fiber's resume callback while it waits to be re-armed. */
  timer: ((effect: Effect.Effect<void>) => void) | undefined
  /** A re-arm that came while the timer was not waiting. */
  rearmed: boolean
  /** The timer saw due work: the next worker to park (the due work taken) re-arms it. */
  dueWhileBusy: boolean
}

/** @internal */
export const make = (): TimerState => ({ timer: undefined, rearmed: false, dueWhileBusy: false })

/** Asks the timer fiber to look at the next `runAt` again. @internal */
export const rearm = (state: TimerState): void => {
  const timer = state.timer
  if (timer === undefined) {
    state.rearmed = true
  } else {
    state.timer = undefined
    timer(Effect.void)
  }
}

/** The timer fiber's wait for `rearm`. @internal */
export const awaitRearm = (state: TimerState): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (state.rearmed) {
      state.rearmed = false
      resume(Effect.void)
      return
    }
    state.timer = resume
    return Effect.sync(() => {
      if (state.timer === resume) state.timer = undefined
    })
  })

/** The timer saw due work while the workers were busy. @internal */
export const dueWhileBusy = (state: TimerState): void => {
  state.dueWhileBusy = true
}

/** A worker parks: if due work was seen while all were busy, the timer looks again. @internal */
export const workerParked = (state: TimerState): void => {
  if (state.dueWhileBusy) {
    state.dueWhileBusy = false
    rearm(state)
  }
}
