/**
 * The claim step and the fibers that keep work flowing. An engine runs:
 *
 * - `maxConcurrent` workers. A worker is either *claiming* (asking the store for one runnable
 *   task), *running* (execute, then settle), or *idle* (parked: its resume callback waits in
 *   `state.parked`, no fiber per task and no semaphore). Submits, due retries and wake-ups from the store move idle workers to claiming; a
 *   claim that finds nothing moves a worker to idle, unless `generation` moved meanwhile (then it
 *   claims again, so no news is ever missed). A backlog is tasks in the store, never fibers.
 *   Over a shared store that offers `settleMany` (the SQL stores) a worker does not wait for its
 *   settlement to land: it leaves it in the outbox (up to `maxBehindOf` in all) and claims its
 *   next task; the task stays in `running` (leased, heartbeated, seen by `drain` and
 *   shutdown) until it lands.
 * - two settlers, over such a store: one takes the outbox (up to 500) and writes it in one
 *   `settleMany`; while it is in flight the next batch gathers, and the other settler writes only
 *   once a full batch waits, or once the engine has nothing else going on (the end of a
 *   backlog). Waiting for each round trip held an engine at concurrency 10 to about 3,300
 *   tasks/s on PostgreSQL; a fiber forked per settlement instead of the outbox cost node's main
 *   thread about 30 us a task more.
 * - the timer: sleeps until the earliest future `runAt` (a delay or a retry's backoff) and then
 *   wakes idle workers; `rearm` makes it look again. On a shared store it also wakes every
 *   `pollInterval`, the backstop for missed `wakeups`.
 * - the heartbeat: while attempts run, extends their leases every `heartbeatInterval` and stops
 *   those whose cancel was requested elsewhere or whose lease was lost.
 * - a listener of the store's `wakeups` (or its `onWakeup` callbacks), for work submitted by other
 *   instances.
 *
 * @since 0.1.0
 * @internal
 */
import type { Context, Scope } from "effect"
import { Deferred, Duration, Effect, Fiber, FiberRef, Option } from "effect"
import type { TaskRecord } from "../services/TaskRecord.js"
import type { ClaimedTask, ClaimOptions, TaskStore } from "../services/TaskStore.js"
import type { Engine, StopReason } from "./EngineState.js"
import {
  awaitBusy,
  awaitRearm,
  batchWritten,
  claimAnswered,
  claimSent,
  landed,
  park as parkWorker,
  parkSettler,
  rearm,
  sendBehind,
  settleBatch,
  settleReady,
  signalRoom,
  signalSettled,
  takeBatch,
  wakeOneThenRest,
  wakeSettler,
  wakeWorkers
} from "./EngineState.js"
import { dueWhileBusy, workerParked } from "./state/Timer.js"
import type { Attempt } from "./Execute.js"
import { runner } from "./Execute.js"
import * as Progress from "./Progress.js"
import * as StoreRetry from "./StoreRetry.js"
import * as Validate from "./Validate.js"
import { apply, applyOutcome, decide, report, settle, write as writeOne } from "./Settle.js"

const claimFailed = (engine: Engine) => (error: { readonly reason: string }) =>
  Effect.zipRight(
    Effect.logWarning(`claim failed, retrying: ${error.reason}`),
    Effect.as(Effect.sleep(Duration.millis(engine.settings.pollMillis)), [] as ReadonlyArray<TaskRecord>)
  )

/**
 * How many settlements per worker may be written behind at once: enough for a SQL store to
 * batch them into few statements (a settlement costs PostgreSQL about twice as much in batches of
 * 34 as in batches of 500), few enough that a slow database soon holds workers back. At 32 a
 * worker, ten no-op workers filled the 320 while one batch of 320 was in flight, and then
 * settled synchronously, through small statements, until it landed: four settlements in five.
 */
const behindPerWorker = 64

/**
 * The most settlements the workers may leave behind at once: `behindPerWorker` each, and never
 * fewer than three full statements (one in flight, one more in flight, one gathering). With 640
 * at concurrency 10, the workers filled the outbox while one batch of 500 was in flight and then
 * settled 220-350 tasks per 20,000 synchronously, each a small statement of its own (PostgreSQL
 * 29 us a task); at 1,500 none did (25 us), and the median of five interleaved runs went from
 * 22,600 to 25,500 tasks/s. A crash reruns the tasks finished but not yet settled, so this is
 * also the bound on those.
 *
 * @internal
 */
export const maxBehindOf = (maxConcurrent: number): number =>
  Math.max(maxConcurrent * behindPerWorker, 3 * settleBatch)

/** Whether settlements are written behind: over a shared store that offers `settleMany`. @internal */
export const writesBehind = (store: TaskStore): boolean => store.shared && store.settleMany !== undefined

/**
 * A worker: claim, run, repeat; park when there is nothing to claim. It is uninterruptible but
 * for the attempt and the park, and ends after an attempt that was stopped by interruption (its
 * fiber is then interrupted): `spawnWorker` replaces it.
 *
 * @internal
 */
export const worker = (engine: Engine): Effect.Effect<void> =>
  Effect.uninterruptible(Effect.suspend(() => {
    // a worker may be started from an uninterruptible region (a finalizer, a layer build), so the
    // interruptible parts say so outright rather than restoring what they inherited
    const restore = Effect.interruptible
    const { settings, state, store } = engine
    // the generation check and the registration happen in one synchronous step, so a wake-up
    // cannot slip in between them
    const park = (generation: number): Effect.Effect<boolean> =>
      Effect.as(
        restore(Effect.async<void>((resume) => {
          if (state.generation !== generation || state.closing) {
            resume(Effect.void)
            return
          }
          workerParked(state)
          const unpark = parkWorker(state, resume)
          wakeSettler(state)
          return unpark
        })),
        true
      )
    const maxBehind = writesBehind(store) ? maxBehindOf(settings.maxConcurrent) : 0
    const local = engine.local
    const ahead = engine.ahead
    const again = Effect.succeed(true)
    const slot: Progress.WorkerSlot = { _tag: "WorkerSlot", current: undefined }
    /** After an attempt: settle it, and say whether the worker goes on. */
    const settled = (attempt: Attempt): Effect.Effect<boolean> => {
      slot.current = undefined
      const { record, running } = attempt
      const decided = decide(engine, attempt)
      if (running.stop === undefined && !Effect.isEffect(decided)) {
        if (local !== undefined) {
          // a store in this thread settles at once, without an Effect
          const outcome = local.settle(record.id, state.owner, decided.settlement)
          applyOutcome(engine, attempt, decided, outcome, undefined, false)
          return decided.report === undefined ? again : Effect.as(report(engine, attempt, decided), true)
        }
        if (state.behind < maxBehind) {
          // written behind: the worker claims its next task while a settler writes this one;
          // the attempt is over, so its metric event is recorded now
          engine.metrics.record(record.name, decided.event, decided.value)
          sendBehind(state, { attempt, decided })
          return again
        }
      }
      return Effect.map(settle(engine, attempt, decided), () => running.stop === undefined)
    }
    return Effect.withFiberRuntime<void>((fiber) => {
      const run = runner(engine, fiber, slot, restore, settled)
      // the generation when the claim in flight was sent (one claim at a time per worker)
      let generation = 0
      // what the worker claims with, made again when the engine's names change
      let options: ClaimOptions = { names: [], limit: 1, owner: state.owner, leaseMillis: settings.leaseMillis }
      const onClaimed = (record: ClaimedTask | undefined): Effect.Effect<boolean> => {
        // after a wake-up of one worker (see `listen`), its claim is back: now the others
        claimAnswered(state)
        if (record === undefined) {
          signalSettled(state)
          return park(generation)
        }
        if (state.running.has(record.id)) {
          // a task of ours whose lease ran out while it ran or while its settlement waited (an
          // outage): we hold it again, and the attempt goes on or its settlement lands; it never
          // runs twice here at once
          return again
        }
        if (state.closing) {
          // claimed while shutting down: hand it straight back, then tell shutdown (which waits
          // for claims in flight; it waited out shutdownTimeout when not told)
          return Effect.as(
            StoreRetry.untilDoneThen(
              store.settle(record.id, state.owner, { _tag: "Released" }),
              "release",
              () => Effect.sync(() => signalSettled(state)),
              state
            ),
            false
          )
        }
        signalRoom(state)
        engine.metrics.record(record.name, "started", 1)
        const registered = state.handlers.get(record.name)
        if (registered === undefined) {
          // claimed by name, so a handler exists: a missing one is a broken invariant
          return Effect.dieMessage(`claimed task ${record.id} of unregistered name ${record.name}`)
        }
        // run() registers the attempt as running in this same synchronous step as the claim,
        // so `drain` never sees it neither pending nor running
        return run(registered, record)
      }
      // the claim and what follows it are one continuation (`catchAll` then `flatMap` were two)
      const claimed = {
        onFailure: (error: { readonly reason: string }) =>
          Effect.flatMap(claimFailed(engine)(error), (records) => onClaimed(records[0])),
        onSuccess: (records: ReadonlyArray<ClaimedTask>) => {
          // the store answers: settlements waiting to retry go now, before leases run out
          StoreRetry.answered(state)
          return onClaimed(records[0])
        }
      }
      const step: Effect.Effect<boolean> = Effect.suspend(() => {
        if (state.closing) return restore(Effect.never)
        generation = claimSent(state)
        if (local !== undefined) return onClaimed(local.claimOne(state.names, state.owner, settings.leaseMillis))
        if (options.names !== state.names) {
          options = { names: state.names, limit: 1, owner: state.owner, leaseMillis: settings.leaseMillis }
        }
        if (ahead !== undefined) {
          // a task the store claimed ahead: taken at once, as `local` does
          const task = ahead.take(options)
          if (task !== undefined) return onClaimed(task)
        }
        return Effect.matchEffect(store.claim(options), claimed)
      })
      const loop: Effect.Effect<void> = Effect.flatMap(step, (again) => (again ? loop : Effect.void))
      return Effect.zipRight(FiberRef.set(Progress.currentTask, slot), loop)
    })
  }))

/**
 * A settler fiber (an engine over a store with `settleMany` runs two, so one batch is written
 * while the next gathers): takes every settlement in the outbox, writes them in one
 * `settleMany` (retried until it lands, as every settlement is), then does each attempt's
 * bookkeeping and reports. Uninterruptible while it writes; shutdown waits for the outbox to
 * empty, since its attempts are still in `running`.
 *
 * @internal
 */
export const settler = (engine: Engine): Effect.Effect<never> => {
  const { state, store } = engine
  const settleMany = store.settleMany!
  const park = Effect.async<void>((resume) => {
    if (settleReady(state)) {
      resume(Effect.void)
      return
    }
    return parkSettler(state, resume)
  })
  const write = Effect.suspend(() => {
    const batch = takeBatch(state)
    if (batch.length === 0) return Effect.void
    const settlements = batch.map((o) => [o.attempt.record.id, o.decided.settlement] as const)
    const done = (results: ReadonlyArray<Option.Option<TaskRecord>>) => {
      batchWritten(state)
      let reports: Array<Effect.Effect<void>> | undefined
      for (let i = 0; i < batch.length; i++) {
        const { attempt, decided } = batch[i]!
        apply(engine, attempt, decided, results[i] ?? Option.none(), true)
        landed(state, attempt.running)
        if (decided.report !== undefined) (reports ??= []).push(report(engine, attempt, decided))
      }
      return reports === undefined ? Effect.void : Effect.all(reports, { discard: true })
    }
    return Effect.matchEffect(settleMany(state.owner, settlements), {
      onFailure: (error) =>
        error.permanent
          ? // refused for good: one of them cannot be written; each is written (or failed) alone
            Effect.ensuring(
              Effect.forEach(batch, ({ attempt, decided }) =>
                Effect.zipRight(writeOne(engine, attempt, decided, true), Effect.sync(() => landed(state, attempt.running))), { discard: true }),
              Effect.sync(() => batchWritten(state))
            )
          : Effect.zipRight(
            Effect.logWarning(`store unavailable (settle), retrying: ${error.reason}`),
            StoreRetry.untilDoneThen(settleMany(state.owner, settlements), "settle", done, state)
          ),
      onSuccess: done
    })
  })
  return Effect.forever(Effect.zipRight(Effect.interruptible(park), Effect.uninterruptible(write)))
}

/** Starts a worker in `scope`, and a replacement whenever one ends while the engine runs. @internal */
export const spawnWorker = (engine: Engine, scope: Scope.Scope, context: Context.Context<never>): Effect.Effect<void> =>
  Effect.asVoid(
    Effect.forkIn(
      Effect.provide(worker(engine), context).pipe(
        Effect.ensuring(Effect.suspend(() => engine.state.closing ? Effect.void : spawnWorker(engine, scope, context)))
      ),
      scope
    )
  )

/** The timer fiber: wakes workers when delayed work falls due. @internal */
export const timer = (engine: Engine): Effect.Effect<void> => {
  const { clock, settings, state, store } = engine
  const rearmed = awaitRearm(state)
  const poll = store.shared
  let warned = false
  const nextRunAt = Effect.suspend(() => store.nextRunAt(state.names)).pipe(
    Effect.tap(() => Effect.sync(() => StoreRetry.answered(state))),
    Effect.orElseSucceed(() => Option.none<Date>())
  )
  const step: Effect.Effect<void> = Effect.flatMap(
    nextRunAt,
    (next) => {
      const now = clock.unsafeCurrentTimeMillis()
      let wait = Option.isNone(next) ? Number.POSITIVE_INFINITY : next.value.getTime() - now
      if (Number.isNaN(wait)) {
        // a stored runAt that is no time (written around the engine): look again later, never spin
        if (!warned) {
          warned = true
          return Effect.zipRight(
            Effect.logWarning("timer: a pending task's runAt is not a valid time; it is skipped (fix or delete the record)"),
            Effect.raceFirst(Effect.sleep(Duration.millis(Validate.maxTimerMillis)), rearmed)
          )
        }
        wait = Validate.maxTimerMillis
      }
      if (wait <= 0) {
        // due now: idle workers take it, busy ones come back for it; the first worker to park
        // afterwards re-arms us, to look for the next future runAt
        if (state.parked.length > 0) wakeWorkers(state, state.parked.length)
        dueWhileBusy(state)
        wait = Number.POSITIVE_INFINITY
      }
      if (poll) wait = Math.min(wait, settings.pollMillis)
      if (wait === Number.POSITIVE_INFINITY) return rearmed
      // a JS timer cannot sleep past 2^31 - 1 ms (Effect's then never fires): wake and look again
      wait = Math.min(wait, Validate.maxTimerMillis)
      return Effect.raceFirst(
        Effect.tap(Effect.sleep(Duration.millis(wait)), () =>
          Effect.sync(() => {
            if (poll) wakeWorkers(state, state.parked.length)
          })),
        rearmed
      )
    }
  )
  const loop: Effect.Effect<void> = Effect.flatMap(step, () => loop)
  return loop
}

/** Interrupts a running attempt for a reason, without waiting. @internal */
export const stopRunning = (engine: Engine, id: string, reason: StopReason): Effect.Effect<void> =>
  Effect.suspend(() => {
    const running = engine.state.running.get(id)
    if (running === undefined || running.stop !== undefined || running.behind !== undefined) return Effect.void
    running.stop = reason
    return Fiber.interruptFork(running.fiber)
  })

/** The heartbeat fiber: keeps the leases of running attempts. @internal */
export const heartbeat = (engine: Engine): Effect.Effect<void> => {
  const { settings, state, store } = engine
  const beat = Effect.suspend(() => {
    const ids = Array.from(state.running.keys()) as Array<TaskRecord["id"]>
    if (ids.length === 0) return Effect.void
    return store.heartbeat(state.owner, ids, settings.leaseMillis).pipe(
      Effect.flatMap(({ cancelled, lost }) =>
        Effect.zipRight(
          Effect.sync(() => StoreRetry.answered(state)),
          Effect.zipRight(
          Effect.forEach(cancelled, (id) => stopRunning(engine, id, "cancel"), { discard: true }),
          Effect.forEach(lost, (id) => stopRunning(engine, id, "lost"), { discard: true })
          )
        )
      ),
      Effect.catchAll((error) => Effect.logWarning(`heartbeat failed: ${error.reason}`))
    )
  })
  // parked while nothing runs, so an idle engine never wakes for heartbeats
  const waitBusy = Effect.flatMap(Deferred.make<void>(), (busy) =>
    Effect.suspend(() => awaitBusy(state, busy)))
  const step = Effect.zipRight(waitBusy, Effect.zipRight(Effect.sleep(Duration.millis(settings.heartbeatMillis)), beat))
  const loop: Effect.Effect<void> = Effect.flatMap(step, () => loop)
  return loop
}

/**
 * Wakes every idle worker on each signal of new work from the store (a signal does not say how
 * many tasks came), from the first handler's registration on: an engine that only submits does
 * not listen (on PostgreSQL its LISTEN would have woken the producing process for every
 * notification, beside the workers that need it). A signal of work for later (`wake(at)` with a
 * future `at`, from the memory store) re-arms the timer instead.
 *
 * One worker is woken at once, and the others once a claim has come back (`restAfterClaim`): ten
 * workers woken together put ten claims' worth of steps, and a second claim statement beside the
 * first in PostgreSQL, ahead of the answer that starts a lone task (notification to task start on
 * an idle engine, in five paired runs: 1.14-1.68 ms, against 1.04-1.33 ms). Waking only the one,
 * and the next whenever a claim found a task, left workers idle beside a backlog when other
 * instances' claims made theirs come back empty (`SKIP LOCKED`), until the next poll.
 *
 * @internal
 */
export const listen = (engine: Engine): Effect.Effect<void> => {
  const { clock, state, store } = engine
  const wake = (at?: number): void => {
    if (at !== undefined && at > clock.unsafeCurrentTimeMillis()) {
      // work for later: the timer looks at the next runAt again
      rearm(state)
      return
    }
    wakeOneThenRest(state)
  }
  // once listening, one look for work that came before the listener did
  const listening = Effect.scoped(
    Effect.zipRight(store.onWakeup(wake, state.owner), Effect.zipRight(Effect.sync(wake), Effect.never))
  )
  return Effect.zipRight(Deferred.await(state.serving), listening)
}
