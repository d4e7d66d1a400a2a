/**
 * Retry decisions. A task's `Schedule` is a pure function of the attempts so far, so the delay
 * before attempt `n + 1` is found by stepping the schedule `n` times from its initial state: the
 * same answer in any process, which is what lets a durable store persist a backoff as `runAt`.
 *
 * @since 0.1.0
 */
import type { Effect as EffectNS } from "effect"
import { Duration, Effect, Option, Schedule, ScheduleDecision, ScheduleIntervals } from "effect"

/**
 * The guide's policy: 3 attempts in all, waiting 1 second and then 2 seconds.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.seconds(1)).pipe(
  Schedule.intersect(Schedule.recurs(2))
)

/**
 * The delay before the next attempt after attempt number `attempt` (1-based) failed with
 * `error`, or `none` when the schedule is done. Schedules that read elapsed time see every step
 * at `now`; count-based ones (`exponential`, `spaced`, `recurs`, `fibonacci`, `jittered`) are
 * exact.
 *
 * @since 0.1.0
 * @category retry
 */
export const nextDelay = <E>(
  schedule: Schedule.Schedule<unknown, E>,
  attempt: number,
  error: E,
  now: number
): EffectNS.Effect<Option.Option<Duration.Duration>> =>
  Effect.gen(function*() {
    let state: unknown = schedule.initial
    let delay = 0
    for (let i = 0; i < attempt; i++) {
      const [next, , decision] = yield* schedule.step(now, error, state)
      if (ScheduleDecision.isDone(decision)) return Option.none()
      state = next
      delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
    }
    return Option.some(Duration.millis(delay))
  })
