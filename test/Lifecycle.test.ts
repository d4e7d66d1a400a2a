import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Layer, Ref, Schedule, Schema, Stream, TestClock } from "effect"
import * as EngineState from "../src/engine/EngineState.js"
import { Task, TaskEngine, TaskRecord, TaskStore } from "../src/index.js"

class Oops extends Schema.TaggedError<Oops>()("Oops", { permanent: Schema.Boolean }) {}

const Outcome = Schema.Literal("succeed", "transient", "permanent", "die", "hang", "slow")

const Job = Task.make("job", {
  payload: Schema.Struct({ outcome: Outcome }),
  failure: Oops,
  timeout: "1 second",
  retry: Schedule.spaced("100 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
  retryWhile: (error) => error._tag !== "Oops" || !error.permanent
})

type Op =
  | { readonly _tag: "submit"; readonly outcome: typeof Outcome.Type; readonly priority: number; readonly delay: number }
  | { readonly _tag: "cancel"; readonly index: number }
  | { readonly _tag: "advance"; readonly millis: number }

const op: fc.Arbitrary<Op> = fc.oneof<Array<fc.Arbitrary<Op>>>(
  fc.record({
    _tag: fc.constant("submit" as const),
    outcome: fc.constantFrom<typeof Outcome.Type>("succeed", "transient", "permanent", "die", "hang", "slow"),
    priority: fc.integer({ min: -2, max: 2 }),
    delay: fc.constantFrom(0, 0, 0, 50, 500)
  }),
  fc.record({ _tag: fc.constant("cancel" as const), index: fc.nat({ max: 40 }) }),
  fc.record({ _tag: fc.constant("advance" as const), millis: fc.constantFrom(0, 10, 100, 600) })
)

describe("lifecycle properties", () => {
  it.effect.prop(
    "for random submits, cancels, failures and successes every task ends in exactly one terminal state, none vanishes",
    [fc.array(op, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 4 })],
    ([ops, maxConcurrent]) =>
      Effect.gen(function*() {
        const running = yield* Ref.make(0)
        const peak = yield* Ref.make(0)
        const JobLive = Job.toLayer(({ outcome }) =>
          Effect.acquireUseRelease(
            Effect.flatMap(Ref.updateAndGet(running, (n) => n + 1), (n) => Ref.update(peak, (p) => Math.max(p, n))),
            () => {
              switch (outcome) {
                case "succeed":
                  return Effect.void
                case "slow":
                  return Effect.sleep("300 millis")
                case "transient":
                  return Effect.fail(new Oops({ permanent: false }))
                case "permanent":
                  return Effect.fail(new Oops({ permanent: true }))
                case "die":
                  return Effect.die("defect")
                case "hang":
                  return Effect.never
              }
            },
            () => Ref.update(running, (n) => n - 1)
          )
        )
        yield* Effect.gen(function*() {
          const engine = yield* TaskEngine.TaskEngine
          // the engine's own invariants (EngineState.check), after every step of the run
          const state = EngineState.ofService.get(engine)!
          const invariants = (when: string) =>
            assert.deepStrictEqual(EngineState.check(state, { maxConcurrent }), [], when)
          const history = yield* Ref.make<ReadonlyArray<TaskRecord.TaskRecord>>([])
          yield* Effect.fork(Stream.runForEach(engine.changes, (r) => Ref.update(history, (h) => [...h, r])))
          yield* TestClock.adjust(0)
          const ids: Array<string> = []
          for (const o of ops) {
            switch (o._tag) {
              case "submit":
                ids.push(yield* engine.submit(Job, { outcome: o.outcome }, { priority: o.priority, delay: o.delay }))
                break
              case "cancel":
                if (ids.length > 0) yield* engine.cancel(ids[o.index % ids.length]!)
                break
              case "advance":
                yield* TestClock.adjust(o.millis)
            }
            invariants(`after ${o._tag}`)
          }
          // move virtual time until every delay, timeout and backoff has played out: a hanging task
          // takes 3 timeouts and 2 backoffs (3.2 s), one worker may have 40 of them queued
          for (let i = 0; i < 400; i++) {
            const open = (yield* engine.list()).filter((r) => !TaskRecord.isTerminal(r.status))
            if (open.length === 0) break
            yield* TestClock.adjust("500 millis")
            invariants("while the work plays out")
          }
          yield* engine.drain
          invariants("drained")
          assert.strictEqual(state.running.size + state.claiming + state.waiters.size, 0, "idle once drained")
          const records = yield* engine.list()
          assert.strictEqual(records.length, ids.length, "no task vanishes")
          assert.deepStrictEqual(new Set(records.map((r) => r.id)), new Set(ids))
          for (const r of records) {
            assert.isTrue(TaskRecord.isTerminal(r.status), `${r.id} ended ${r.status}`)
            assert.isAtMost(r.attempt, 3)
          }
          // once terminal, a task never changes status again
          const seen = new Map<string, string>()
          for (const r of yield* Ref.get(history)) {
            const before = seen.get(r.id)
            if (before !== undefined && TaskRecord.isTerminal(before as TaskRecord.TaskStatus)) {
              assert.strictEqual(r.status, before, `${r.id} left terminal ${before}`)
            }
            seen.set(r.id, r.status)
          }
          assert.isAtMost(yield* Ref.get(peak), maxConcurrent)
          assert.strictEqual(yield* Ref.get(running), 0)
        }).pipe(
          Effect.provide(
            JobLive.pipe(
              Layer.provideMerge(TaskEngine.layer({ maxConcurrent, cleanup: false })),
              Layer.provide(TaskStore.layerMemory)
            )
          )
        )
      }),
    { fastCheck: { numRuns: 40 } }
  )
})
