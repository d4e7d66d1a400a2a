/**
 * `npm start`: the terminal demo. Runs the background-tasks guide's use cases as real tasks on an
 * in-memory engine, with live progress bars on a terminal (plain lines when piped), then prints
 * every task, the metrics and the checks. Exits 0 when every task ended as expected, 1 otherwise.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { TaskStore } from "../src/index.js"
import * as Demo from "./demo/Demo.js"

const exitWith = (code: number) => Effect.sync(() => (process.exitCode = code))

// the one place the store is chosen; `--durable` (embedded PostgreSQL) is planned, not built yet
const main = process.argv.includes("--durable")
  ? Effect.zipRight(
    Console.error("--durable (embedded PostgreSQL) is not available yet; `npm start` runs the in-memory demo"),
    exitWith(2)
  )
  : Demo.run({ store: TaskStore.layerMemory, storeName: "in-memory store" }).pipe(
    // a task that ended otherwise than expected exits 1; a defect is reported by runMain
    Effect.catchTag("DemoFailed", (error) => Effect.zipRight(Console.error(`\n${error.message}`), exitWith(1)))
  )

NodeRuntime.runMain(main, { disablePrettyLogger: true })
