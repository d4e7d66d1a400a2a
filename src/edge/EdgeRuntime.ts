/**
 * Running the engine where the platform may end the process: edge functions (Supabase, Deno
 * Deploy, Cloudflare) announce shutdown with a `beforeunload` event and then stop the isolate.
 * `layer` is `TaskEngine.layer` with a short `shutdownTimeout` and an account of the hand-back:
 * when its scope closes, it says which tasks this instance gave back to a durable store (another
 * instance runs them), or, over a memory store, exactly which unfinished tasks are lost. It is
 * never silent. `disposeOnUnload` closes a runtime on `beforeunload`.
 *
 * Shutdown, in order: the snapshot of the tasks this instance holds; the engine's own shutdown
 * (intake stops, running attempts get `shutdownTimeout`, the rest are interrupted and released
 * to `pending`); the account, read back from the store.
 *
 * @since 0.1.0
 */
import { Effect, Layer, Ref } from "effect"
import * as TaskEngine from "../TaskEngine.js"
import type { TaskRecord } from "../services/TaskRecord.js"
import { TaskStore } from "../services/TaskStore.js"

const describe = (records: ReadonlyArray<TaskRecord>): string =>
  records.map((r) => `${r.id} (${r.name}, ${r.status}, attempt ${r.attempt}, ${Math.round(r.progress)}%)`).join(", ")

const account = (
  store: TaskStore,
  instanceId: string,
  held: ReadonlyArray<TaskRecord>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const unfinished = yield* store.list({ status: ["pending", "processing"] })
    if (!store.shared) {
      if (unfinished.length === 0) {
        yield* Effect.logInfo("shutdown: every task had finished; the memory store drops nothing")
      } else {
        yield* Effect.logWarning(
          `shutdown: the memory store is not durable; dropping ${unfinished.length} unfinished task(s): ${describe(unfinished)}`
        ).pipe(Effect.annotateLogs({ dropped: unfinished.map((r) => r.id).join(","), instance: instanceId }))
      }
      return
    }
    const now = yield* Effect.forEach(held, (record) => store.get(record.id))
    const handedBack: Array<TaskRecord> = []
    const finished: Array<TaskRecord> = []
    const stillHeld: Array<TaskRecord> = []
    for (const record of now) {
      if (record._tag === "None") continue
      const r = record.value
      if (r.status === "pending") handedBack.push(r)
      else if (r.status === "processing") stillHeld.push(r)
      else finished.push(r)
    }
    if (held.length === 0) {
      yield* Effect.logInfo("shutdown: this instance held no running tasks; nothing to hand back")
    }
    if (handedBack.length > 0) {
      yield* Effect.logWarning(
        `shutdown: handed ${handedBack.length} unfinished task(s) back to the store for another instance: ${describe(handedBack)}`
      ).pipe(Effect.annotateLogs({ handedBack: handedBack.map((r) => r.id).join(","), instance: instanceId }))
    }
    if (finished.length > 0) {
      yield* Effect.logInfo(`shutdown: ${finished.length} task(s) finished during the grace period: ${describe(finished)}`)
    }
    if (stillHeld.length > 0) {
      yield* Effect.logWarning(
        `shutdown: ${stillHeld.length} task(s) could not be released; another instance takes them once their lease expires: ${
          describe(stillHeld)
        }`
      )
    }
  }).pipe(
    Effect.catchAll((error) =>
      Effect.logError(`shutdown: could not account for unfinished tasks (${error.message}); held: ${describe(held)}`)
    )
  )

/**
 * The engine for an edge runtime: `TaskEngine.layer` whose `shutdownTimeout` defaults to one
 * second (an edge platform gives little time after `beforeunload`), and which logs, as its scope
 * closes, the tasks handed back to a durable store or dropped from a memory store.
 *
 * @example
 * import { Layer } from "effect"
 * import { EdgeRuntime, TaskStore } from "effect-tasks"
 *
 * const EngineLive = EdgeRuntime.layer({ maxConcurrent: 5 }).pipe(Layer.provide(TaskStore.layerMemory))
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TaskEngine.Options = {}): Layer.Layer<TaskEngine.TaskEngine, never, TaskStore> =>
  Layer.scoped(
    TaskEngine.TaskEngine,
    Effect.gen(function*() {
      const store = yield* TaskStore
      // finalizers run in reverse order: the snapshot, then the engine's shutdown, then the account
      const held = yield* Ref.make<{ readonly instanceId: string; readonly records: ReadonlyArray<TaskRecord> }>({
        instanceId: "",
        records: []
      })
      yield* Effect.addFinalizer(() => Effect.flatMap(Ref.get(held), (h) => account(store, h.instanceId, h.records)))
      const engine = yield* TaskEngine.make({ ...options, shutdownTimeout: options.shutdownTimeout ?? "1 second" })
      yield* Ref.set(held, { instanceId: engine.instanceId, records: [] })
      yield* Effect.addFinalizer(() =>
        store.list({ status: "processing" }).pipe(
          Effect.flatMap((processing) =>
            Ref.set(held, {
              instanceId: engine.instanceId,
              records: processing.filter((r) => r.lockedBy === engine.instanceId)
            })
          ),
          Effect.catchAll((error) => Effect.logWarning(`shutdown: cannot list the running tasks: ${error.message}`))
        )
      )
      return engine
    })
  )

interface EventTargetGlobal {
  readonly addEventListener?: (type: string, listener: (event: unknown) => void) => void
  readonly removeEventListener?: (type: string, listener: (event: unknown) => void) => void
}

/**
 * Calls `dispose` (a `ManagedRuntime`'s, a web handler's) once when the runtime dispatches
 * `beforeunload` on `globalThis` (Supabase Edge Runtime, Deno); returns a function that removes
 * the listener. Does nothing where there are no global events (Node).
 *
 * @since 0.1.0
 * @category shutdown
 */
export const disposeOnUnload = (dispose: () => Promise<void>): () => void => {
  const target = globalThis as EventTargetGlobal
  if (typeof target.addEventListener !== "function" || typeof target.removeEventListener !== "function") {
    return () => {}
  }
  const listener = (): void => {
    target.removeEventListener?.("beforeunload", listener)
    dispose().catch((error: unknown) => {
      // the runtime is going away: the console is the only place left to say it
      globalThis.console.error("effect-tasks: shutdown after beforeunload failed", error)
    })
  }
  target.addEventListener("beforeunload", listener)
  return () => target.removeEventListener?.("beforeunload", listener)
}
