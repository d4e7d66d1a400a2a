/**
 * What every part of a SQL store (`SqlTaskStore`: its claims, settlements, progress and change
 * feed) shares, fixed when the store is built: the caller of the SQL functions, the store's clock
 * and scope, the time it passes those functions, and its batch limits. No part writes it.
 *
 * @since 0.1.0
 * @internal
 */
import type { Clock, Scope } from "effect"
import type { FunctionCaller } from "./TaskFunctions.js"

/** @internal */
export interface SqlStoreContext {
  readonly caller: FunctionCaller
  readonly clock: Clock.Clock
  /** The store's scope, which its background fibers (flushes, claims ahead, the feed) live in. */
  readonly scope: Scope.Scope
  /** The time passed to the SQL functions: `null` for the database's `now()` (`time: "database"`). */
  readonly now: () => Date | null
  /** Whether the process's `Clock` decides the time (`time: "clock"`), not the database's. */
  readonly clockTime: boolean
  /** `priorityAgingMillis`. */
  readonly agingMillis: number
  /** The most claims, settlements or ids in one statement. */
  readonly maxBatch: number
  /** Statements of one kind in flight at once. */
  readonly maxInFlight: number
}
