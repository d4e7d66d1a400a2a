/**
 * The outbox of settlements written behind (over a shared store with `settleMany`), and the
 * settler fibers that write it. The only writer of these fields.
 *
 * A finished attempt's settlement is *waiting* in `outbox` (its attempt still in `running`,
 * counted in `behind`), then *in flight* in a settler's `settleMany` (counted in `writing`), then
 * *landed* (`landed`: `behind` goes down, the attempt's callbacks run). A settler is parked (its
 * resume callback in `settlers`) until `settleReady` says it should write.
 *
 * @since 0.2.0
 * @internal
 */
import { Effect } from "effect"
import type { Attempt } from "../Execute.js"
import type { Decision } from "../Settle.js"

/** A finished attempt whose settlement is written behind, and how it settles. @internal */
export interface Outgoing {
  readonly attempt: Attempt
  readonly decided: Decision
}

/** @internal */
export interface OutboxState {
  /** Settlements being written behind (still in `running` until they land). */
  behind: number
  /** Settlements written behind, waiting for a settler fiber to take them. */
  readonly outbox: Array<Outgoing>
  /** The resume callbacks of parked settler fibers. */
  readonly settlers: Array<(effect: Effect.Effect<void>) => void>
  /** Settlement writes (`settleMany`) in flight. */
  writing: number
}

/** What `settleReady` weighs besides the outbox (fields of other owners, read only). @internal */
interface Activity {
  readonly running: ReadonlyMap<string, unknown>
  readonly claiming: number
}

/** @internal */
export const make = (): OutboxState => ({ behind: 0, outbox: [], settlers: [], writing: 0 })

/** The most settlements a settler writes in one `settleMany`. @internal */
export const settleBatch = 500

/**
 * Whether a settler should write now: settlements wait, and either no write is in flight, or a
 * full statement of them does (a second write at once would carry the few that came meanwhile: a
 * statement has a fixed cost, on PostgreSQL 0.15-0.3 ms of CPU for a `task_settle` and as much
 * again in this process), or the engine has nothing else going on (no attempt running, no claim
 * in flight: no more settlements are coming soon, so the last of a backlog lands sooner).
 * @internal
 */
export const settleReady = (state: OutboxState & Activity): boolean =>
  state.outbox.length > 0 &&
  (state.writing === 0 || state.outbox.length >= settleBatch ||
    (state.claiming === 0 && state.running.size === state.behind))

/** Wakes a waiting settler if it should write now. @internal */
export const wakeSettler = (state: OutboxState & Activity): void => {
  if (!settleReady(state)) return
  const settler = state.settlers.pop()
  if (settler !== undefined) settler(Effect.void)
}

/** A settler parks; the returned canceler takes it out again. @internal */
export const parkSettler = (state: OutboxState, resume: (effect: Effect.Effect<void>) => void): Effect.Effect<void> => {
  state.settlers.push(resume)
  return Effect.sync(() => {
    const i = state.settlers.indexOf(resume)
    if (i >= 0) state.settlers.splice(i, 1)
  })
}

/** Leaves a settlement in the outbox for a settler, waking one when it should write. @internal */
export const sendBehind = (state: OutboxState & Activity, outgoing: Outgoing): void => {
  outgoing.attempt.running.behind = []
  state.behind++
  state.outbox.push(outgoing)
  wakeSettler(state)
}

/** A settler takes the next batch to write (empty: nothing to do). @internal */
export const takeBatch = (state: OutboxState): Array<Outgoing> => {
  const batch = state.outbox.splice(0, settleBatch)
  if (batch.length > 0) state.writing++
  return batch
}

/** A batch's write is over (landed, or handed to single writes). @internal */
export const batchWritten = (state: OutboxState): void => {
  state.writing--
}

/** A settlement written behind has landed: its waiters (a `cancel`) go on. @internal */
export const landed = (state: OutboxState, running: Attempt["running"]): void => {
  state.behind--
  const callbacks = running.behind ?? []
  running.behind = undefined
  for (const callback of callbacks) callback()
}
