/**
 * The record-change feed a store keeps for `subscribe`: a `PubSub` of records with a count of live
 * subscribers, so that a store with none skips building and offering records on its hot path.
 * Each subscriber gets its own copy of a record's `Date`s: one that calls `setTime` on a record it
 * was given changes no other subscriber's record, nor the one the store's caller got.
 *
 * @since 0.1.0
 * @internal
 */
import type { Scope } from "effect"
import { Effect, PubSub, Stream } from "effect"
import type { TaskRecord } from "../services/TaskRecord.js"

/** @internal */
export interface ChangeFeed {
  /** Whether anyone listens: build a record to publish only then. */
  readonly active: () => boolean
  /** Offers a record to every subscriber (nothing when none listens). */
  readonly publish: (record: TaskRecord) => void
  /** The port's `subscribe`: live once the effect has run, until the scope closes. */
  readonly subscribe: Effect.Effect<Stream.Stream<TaskRecord>, never, Scope.Scope>
}

const copyDate = (date: Date | null): Date | null => (date === null ? null : new Date(date.getTime()))

/** A record with Dates of its own (a `Date` cannot be frozen: `setTime` ignores `Object.freeze`). */
const ownDates = (record: TaskRecord): TaskRecord => ({
  ...record,
  runAt: new Date(record.runAt.getTime()),
  createdAt: new Date(record.createdAt.getTime()),
  startedAt: copyDate(record.startedAt),
  finishedAt: copyDate(record.finishedAt),
  updatedAt: new Date(record.updatedAt.getTime()),
  lockedUntil: copyDate(record.lockedUntil)
})

/** @internal */
export const make: Effect.Effect<ChangeFeed> = Effect.map(PubSub.unbounded<TaskRecord>(), (pubsub) => {
  let subscribers = 0
  return {
    active: () => subscribers > 0,
    publish: (record) => {
      if (subscribers > 0) pubsub.unsafeOffer(record)
    },
    subscribe: Effect.gen(function*() {
      const dequeue = yield* PubSub.subscribe(pubsub)
      yield* Effect.acquireRelease(Effect.sync(() => subscribers++), () => Effect.sync(() => subscribers--))
      return Stream.map(Stream.fromQueue(dequeue), ownDates)
    })
  }
})
