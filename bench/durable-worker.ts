/**
 * The worker process of the durable section (`durable.ts` forks it): one contender's worker at
 * concurrency 10 on one schema, driven over the IPC channel.
 *
 *   node --import tsx bench/durable-worker.ts <contender> <mode> <schema>   (BENCH_DATABASE_URL)
 *
 * Messages in: `ping` (answered with this process's wall clock, to check the two clocks agree),
 * `start` (starts the worker, answers `started`), `expect` (answers `handled` once that many
 * tasks have started), `stop` (stops the worker gracefully, answers `stopped`, exits).
 * `handled` carries the wall-clock time the first task started and the submit-to-start latency
 * of every task whose payload had an `at` stamp.
 */
import type { ContenderName, Mode, Worker } from "./durable-contenders.js"
import { wallClock, worker } from "./durable-contenders.js"

export type ToWorker =
  | { readonly type: "ping"; readonly sent: number }
  | { readonly type: "start" }
  | { readonly type: "expect"; readonly count: number }
  | { readonly type: "stop" }

export type FromWorker =
  | { readonly type: "pong"; readonly sent: number; readonly child: number }
  | { readonly type: "started" }
  | {
    readonly type: "handled"
    readonly handled: number
    readonly firstStart: number
    readonly latencies: ReadonlyArray<number>
  }
  | { readonly type: "stopped" }
  | { readonly type: "error"; readonly message: string }

const [contender, mode, schema] = process.argv.slice(2) as [ContenderName, Mode, string]
const url = process.env.BENCH_DATABASE_URL
if (url === undefined || schema === undefined || process.send === undefined) {
  throw new Error("durable-worker: forked by bench/durable.ts only")
}

// an orphan does not outlive the benchmark
setTimeout(() => process.exit(3), 300_000).unref()
process.on("disconnect", () => process.exit(4))

const send = (message: FromWorker): void => {
  process.send!(message)
}

let handled = 0
let firstStart = 0
let expected = Number.POSITIVE_INFINITY
const latencies: Array<number> = []

const onTask = (at: number): void => {
  const now = wallClock()
  if (handled === 0) firstStart = now
  handled++
  if (at > 0) latencies.push(now - at)
  if (handled === expected) send({ type: "handled", handled, firstStart, latencies })
}

let running: Worker | undefined

const fail = (error: unknown): void => {
  send({ type: "error", message: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) })
}

process.on("message", (message: ToWorker) => {
  switch (message.type) {
    case "ping":
      send({ type: "pong", sent: message.sent, child: wallClock() })
      break
    case "start":
      worker(contender, url, schema, mode, onTask).then((w) => {
        running = w
        send({ type: "started" })
      }, fail)
      break
    case "expect":
      expected = message.count
      if (handled >= expected) send({ type: "handled", handled, firstStart, latencies })
      break
    case "stop":
      Promise.resolve(running?.stop()).then(() => {
        send({ type: "stopped" })
        process.disconnect()
        setTimeout(() => process.exit(0), 100).unref()
      }, fail)
      break
  }
})

send({ type: "pong", sent: 0, child: wallClock() })
