/**
 * The settlements of a SQL store, coalesced: concurrent `settle` calls become one `task_settle`
 * of distinct tasks, each keeping its own outcome and each caller getting its own record (a
 * batch the engine gathered itself, `settleMany`, goes as it is). Owns the ledger of the tasks
 * the store holds (`hold`): a task's claim row from its claim until it is settled, given back
 * or reported lost, from which its settled record is made, since `task_settle` answers only what
 * the settlement changed.
 *
 * @since 0.1.0
 * @internal
 */
import type { Scope } from "effect"
import { Effect, Exit, Option } from "effect"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { TaskErrorInfo, TaskId, TaskRecord, TaskStatus } from "../services/TaskRecord.js"
import type { Settlement } from "../services/TaskStore.js"
import * as Batcher from "./Batcher.js"
import type { SqlStoreContext } from "./SqlStoreContext.js"
import type { Args, ClaimedRow, SettledRow, SettleOutcome } from "./TaskFunctions.js"
import { toDate } from "./TaskFunctions.js"

/** A port settlement, or the store's own undoing of a claim whose task never started. @internal */
export type Outcome = Settlement | { readonly _tag: "Returned" }

/** One settlement to write, with the attempt's last progress not yet written. @internal */
export interface SettleInput {
  readonly id: TaskId
  readonly owner: string
  readonly settlement: Outcome
  readonly progress: number | undefined
}

const outcomes: { readonly [K in Outcome["_tag"]]: SettleOutcome } = {
  Completed: "completed",
  Failed: "failed",
  Cancelled: "cancelled",
  Retry: "retry",
  Released: "released",
  Returned: "returned"
}

/** The arguments of one `task_settle` for distinct tasks: one element of each array per settlement. */
const settleArgs = (
  inputs: ReadonlyArray<SettleInput>
): Omit<Args["task_settle"], "p_now" | "p_aging_ms" | "p_synchronous"> => {
  const n = inputs.length
  const owners = new Array<string>(n)
  const ids = new Array<string>(n)
  const kinds = new Array<SettleOutcome>(n)
  const values = new Array<unknown>(n)
  const runAts = new Array<number | null>(n)
  const progress = new Array<number | null>(n)
  for (let i = 0; i < n; i++) {
    const input = inputs[i]!
    const settlement = input.settlement
    owners[i] = input.owner
    ids[i] = input.id
    kinds[i] = outcomes[settlement._tag]
    values[i] = settlement._tag === "Completed"
      ? settlement.result
      : settlement._tag === "Failed" || settlement._tag === "Retry"
      ? settlement.error
      : null
    runAts[i] = settlement._tag === "Retry" ? settlement.runAt.getTime() : null
    progress[i] = input.progress ?? null
  }
  return { p_owners: owners, p_ids: ids, p_outcomes: kinds, p_values: values, p_run_ats: runAts, p_progress: progress }
}

/**
 * The record of a settled task, from its claim row, the settlement and what `task_settle` answered
 * for it (its status, progress and run_at; `at` is the settlement's time).
 */
const settledRecord = (claimed: ClaimedRow, settlement: Outcome, row: SettledRow, at: number): TaskRecord => {
  const final = row.status === "completed" || row.status === "failed" || row.status === "cancelled"
  return {
    id: claimed.id as TaskId,
    name: claimed.name,
    payload: claimed.payload,
    status: row.status as TaskStatus,
    attempt: settlement._tag === "Returned" ? Math.max(claimed.attempt - 1, 0) : claimed.attempt,
    progress: row.progress,
    result: settlement._tag === "Completed" ? (settlement.result ?? null) : null,
    error: settlement._tag === "Completed"
      ? null
      : settlement._tag === "Failed" || settlement._tag === "Retry"
      ? settlement.error
      : claimed.error as TaskErrorInfo | null,
    priority: claimed.priority,
    runAt: toDate(row.run_at)!,
    createdAt: toDate(claimed.created_at)!,
    startedAt: toDate(claimed.at),
    finishedAt: final ? new Date(at) : null,
    updatedAt: new Date(at),
    lockedBy: null,
    lockedUntil: null,
    idempotencyKey: claimed.idempotency_key
  }
}

/** @internal */
export interface SqlSettlements {
  /** The port's `settle`: coalesced with the settlements of other callers. */
  readonly settle: (
    id: TaskId,
    owner: string,
    settlement: Settlement
  ) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>
  /** The port's `settleMany`: one statement (per `maxBatch`) for the engine's own batch. */
  readonly settleMany: (
    owner: string,
    settlements: ReadonlyArray<readonly [TaskId, Settlement]>
  ) => Effect.Effect<ReadonlyArray<Option.Option<TaskRecord>>, StoreUnavailable>
  /** Queues one settlement (or the undoing of a claim) for the next coalesced `task_settle`. */
  readonly submit: (input: SettleInput) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>
  /** Notes the claim rows of tasks an owner now holds. */
  readonly hold: (owner: string, rows: ReadonlyArray<ClaimedRow>) => void
  /** Forgets a held task, unless it was claimed again since by another row (`row` undefined: forget whichever row holds it). */
  readonly unhold: (owner: string, id: string, row: ClaimedRow | undefined) => void
}

/**
 * The settler of a store, whose dispatcher lives as long as the scope. `publish` is the store's
 * feed, `get` reads a task back, `takeProgress` takes a settling attempt's unwritten progress.
 *
 * @internal
 */
export const make = (
  context: SqlStoreContext,
  synchronous: boolean,
  publish: (records: ReadonlyArray<TaskRecord>) => void,
  get: (id: TaskId) => Effect.Effect<Option.Option<TaskRecord>, StoreUnavailable>,
  takeProgress: (id: TaskId, owner: string) => number | undefined
): Effect.Effect<SqlSettlements, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { agingMillis, caller, maxBatch, maxInFlight, now } = context
    type SettleRequest = Batcher.Request<SettleInput, Option.Option<TaskRecord>, StoreUnavailable>
    /**
     * The tasks this store claimed and has not settled, by owner and id: their claim rows, from
     * which a settlement's record is made (`task_settle` answers only what the settlement
     * changed). An entry goes when its task is settled, given back or reported lost by a heartbeat.
     */
    const held = new Map<string, Map<string, ClaimedRow>>()
    const holdingsOf = (owner: string): Map<string, ClaimedRow> => {
      let holdings = held.get(owner)
      if (holdings === undefined) {
        holdings = new Map()
        held.set(owner, holdings)
      }
      return holdings
    }
    const hold = (owner: string, rows: ReadonlyArray<ClaimedRow>): void => {
      const holdings = holdingsOf(owner)
      for (const row of rows) holdings.set(row.id, row)
    }
    /** Forgets a held task, unless it was claimed again since (another row). */
    const unhold = (owner: string, id: string, row: ClaimedRow | undefined): void => {
      const holdings = held.get(owner)
      if (holdings !== undefined && (row === undefined || holdings.get(id) === row)) holdings.delete(id)
    }
    /**
     * One `task_settle` statement for distinct tasks: the settled records by id, published. A
     * settled task this store did not claim (never from an engine) is read back.
     */
    const writeSettlements = (
      inputs: ReadonlyArray<SettleInput>
    ): Effect.Effect<Map<string, TaskRecord>, StoreUnavailable> =>
      Effect.suspend(() => {
        const claimed = inputs.map((input) => held.get(input.owner)?.get(input.id))
        return Effect.flatMap(
          caller.call("task_settle", {
            ...settleArgs(inputs),
            p_now: now(),
            p_aging_ms: agingMillis,
            p_synchronous: synchronous
          }),
          (rows) => {
            // settled or not, the owner no longer holds these tasks
            for (let i = 0; i < inputs.length; i++) {
              if (claimed[i] !== undefined) unhold(inputs[i]!.owner, inputs[i]!.id, claimed[i])
            }
            // rows come in the settlements' order (but for those not settled): matched by
            // position, and by id only after the first that is not where expected
            let byRow: Map<string, SettledRow> | undefined
            let next = 0
            const rowOf = (id: string): SettledRow | undefined => {
              if (byRow === undefined) {
                const row = rows[next]
                if (row !== undefined && row.id === id) {
                  next++
                  return row
                }
                byRow = new Map()
                for (let k = next; k < rows.length; k++) byRow.set(rows[k]!.id, rows[k]!)
              }
              return byRow.get(id)
            }
            const byId = new Map<string, TaskRecord>()
            const unknown: Array<TaskId> = []
            const at = rows.length === 0 ? 0 : toDate(rows[0]!.at)!.getTime()
            for (let i = 0; i < inputs.length; i++) {
              const input = inputs[i]!
              const row = rowOf(input.id)
              if (row === undefined) continue
              const record = claimed[i]
              if (record === undefined) unknown.push(input.id)
              else byId.set(input.id, settledRecord(record, input.settlement, row, at))
            }
            const done = () => {
              publish(Array.from(byId.values()))
              return byId
            }
            if (unknown.length === 0) return Effect.succeed(done())
            return Effect.map(
              Effect.forEach(unknown, (id) =>
                Effect.map(get(id), (record) => {
                  if (Option.isSome(record)) byId.set(id, record.value)
                }), { discard: true }),
              done
            )
          }
        )
      })
    const settleBatch = (batch: ReadonlyArray<SettleRequest>): Effect.Effect<void> => {
      // one settlement per task and statement; a repeated id (never from an engine) goes next
      const seen = new Set<string>()
      const now_: Array<SettleRequest> = []
      const later: Array<SettleRequest> = []
      for (const request of batch) {
        if (seen.has(request.input.id)) later.push(request)
        else {
          seen.add(request.input.id)
          now_.push(request)
        }
      }
      const call = writeSettlements(now_.map((request) => request.input)).pipe(
        Effect.matchEffect({
          onFailure: (error) => Effect.sync(() => Batcher.failAll(now_, error)),
          onSuccess: (byId) =>
            Effect.sync(() => {
              for (const request of now_) {
                request.complete(Exit.succeed(Option.fromNullable(byId.get(request.input.id))))
              }
            })
        })
      )
      return later.length === 0 ? call : Effect.zipRight(call, settleBatch(later))
    }
    const settler = yield* Batcher.make({ execute: settleBatch, maxInFlight, maxBatch })

    const settle = (id: TaskId, owner: string, settlement: Settlement) =>
      Effect.suspend(() => settler.submit({ id, owner, settlement, progress: takeProgress(id, owner) }))

    // one statement for a batch the engine gathered itself (its settlers): no coalescing needed
    const settleMany = (
      owner: string,
      settlements: ReadonlyArray<readonly [TaskId, Settlement]>
    ): Effect.Effect<ReadonlyArray<Option.Option<TaskRecord>>, StoreUnavailable> =>
      Effect.suspend(() => {
        const inputs = settlements.map(([id, settlement]): SettleInput => ({
          id,
          owner,
          settlement,
          progress: takeProgress(id, owner)
        }))
        const answer = (byId: Map<string, TaskRecord>) => settlements.map(([id]) => Option.fromNullable(byId.get(id)))
        if (inputs.length <= maxBatch) return Effect.map(writeSettlements(inputs), answer)
        const chunks: Array<ReadonlyArray<SettleInput>> = []
        for (let i = 0; i < inputs.length; i += maxBatch) chunks.push(inputs.slice(i, i + maxBatch))
        return Effect.map(
          Effect.forEach(chunks, writeSettlements),
          (maps) => answer(new Map(maps.flatMap((byId) => Array.from(byId))))
        )
      })

    return { settle, settleMany, submit: settler.submit, hold, unhold }
  })
