/**
 * The task shared by `PgCrossProcess.test.ts` (which submits it) and `pgWorker.ts` (which runs it
 * in child processes): sleeps `ms`, recording its start and its end in the table `runs`.
 */
import { Schema } from "effect"
import { Task } from "../../src/index.js"

export const Work = Task.make("cross-process-work", {
  payload: Schema.Struct({ n: Schema.Int, ms: Schema.Int })
})

/** The table the handler writes: one `start` row per attempt begun, one `done` row per attempt finished. */
export const runsTable = (schema: string): string =>
  `CREATE TABLE IF NOT EXISTS "${schema}".runs (
    task_id text NOT NULL,
    worker text NOT NULL,
    phase text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  )`
