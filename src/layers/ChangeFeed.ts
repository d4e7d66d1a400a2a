/**
 * The record-change feed a store keeps for `subscribe`: a `PubSub` of records with a count of live
 * subscribers, so that a store with none skips building and offering records on its hot path.
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
      return Stream.fromQueue(dequeue)
    })
  }
})
