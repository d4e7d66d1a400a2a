/**
 * The Supabase example (examples/supabase/functions/process-data) under real Deno, as the Edge
 * Runtime runs it: `EdgeRuntime.waitUntil` and `beforeunload` are stood in for by
 * test/support/http-deno-runner.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect, Schedule, Schema } from "effect"
import { TaskApi } from "../src/index.js"
import { PayloadInvalid } from "../src/services/TaskError.js"
import { TaskRecord } from "../src/services/TaskRecord.js"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Deno {
  readonly process: ChildProcess
  readonly lines: Array<string>
}

const startDeno = Effect.acquireRelease(
  Effect.sync((): Deno => {
    const child = spawn(
      "node_modules/.bin/deno",
      [
        "run",
        "--node-modules-dir=manual",
        "--sloppy-imports",
        "--import-map",
        "test/support/http-deno-imports.json",
        "--allow-env",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "test/support/http-deno-runner.ts"
      ],
      {
        cwd: root,
        env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", PROCESS_MS_PER_ITEM: "20" },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    const lines: Array<string> = []
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line.length > 0) lines.push(line)
    }
    child.stdout!.on("data", collect)
    child.stderr!.on("data", collect)
    return { process: child, lines }
  }),
  (deno) => Effect.sync(() => deno.process.kill("SIGKILL"))
)

/** Runs `check` until `done` holds (at most `times` more tries, `interval` apart); gives its value. */
const poll = <A>(check: Effect.Effect<A>, done: (a: A) => boolean, times: number, interval = "20 millis" as const) =>
  check.pipe(
    Effect.filterOrFail(done, (a) => `still ${JSON.stringify(a)}`),
    Effect.retry(Schedule.spaced(interval).pipe(Schedule.intersect(Schedule.recurs(times)))),
    Effect.orDieWith((last) => new Error(`gave up polling: ${last}`))
  )

/** Waits (bounded) until a log line at or after `from` matches; gives its index. */
const waitForLine = (deno: Deno, pattern: RegExp, from = 0, seconds = 30) =>
  poll(
    Effect.sync(() => deno.lines.findIndex((line, i) => i >= from && pattern.test(line))),
    (index) => index >= 0 || deno.process.exitCode !== null,
    seconds * 50
  ).pipe(
    Effect.flatMap((index) =>
      index >= 0 ? Effect.succeed(index) : Effect.dieMessage(`no line matching ${pattern}:\n${deno.lines.join("\n")}`)
    )
  )

/** One request to the function, its JSON answer decoded with the API's own schema. */
const http = <A, I>(schema: Schema.Schema<A, I>, url: string, init?: RequestInit) =>
  Effect.promise(() => fetch(url, init).then((res) => res.json().then((json: unknown) => ({ status: res.status, json })))).pipe(
    Effect.flatMap(({ json, status }) => Effect.map(Schema.decodeUnknown(schema)(json), (decoded) => ({ status, json: decoded }))),
    Effect.orDie
  )

/** A JSON body must say so: the API answers 415 to any other content type. */
const json = { "content-type": "application/json" }

const items = (n: number) => ({ data: Array.from({ length: n }, (_, i) => ({ id: `item-${i}`, value: i })) })

describe("Supabase edge function under Deno", () => {
  it.live("answers 202 at once, finishes the task afterwards, and accounts for unfinished work on beforeunload", () =>
    Effect.gen(function*() {
      const deno = yield* startDeno
      const listening = deno.lines[yield* waitForLine(deno, /\[shim\] listening on \d+/)]!
      const base = `http://127.0.0.1:${listening.match(/listening on (\d+)/)![1]}/process-data`

      // the first request builds the function's runtime (a cold start): not what is measured here
      assert.strictEqual((yield* http(TaskApi.TaskPage, `${base}/tasks?limit=1`)).status, 200)
      // 100 items at 20 ms each: two seconds of work behind a response that does not wait for it
      const started = Date.now()
      const accepted = yield* http(TaskApi.Submitted, base, { method: "POST", headers: json, body: JSON.stringify(items(100)) })
      const elapsed = Date.now() - started
      assert.strictEqual(accepted.status, 202)
      assert.isBelow(elapsed, 1000)
      const id = accepted.json.id
      const right = yield* http(TaskRecord, `${base}/tasks/${id}`)
      assert.include(["pending", "processing"], right.json.status)

      const done = yield* poll(http(TaskRecord, `${base}/tasks/${id}`), (r) => r.json.status === "completed", 500)
      assert.deepStrictEqual(done.json.result, { processed: 100, sum: 4950 })
      assert.strictEqual(done.json.progress, 100)
      yield* waitForLine(deno, /\[shim\] EdgeRuntime\.waitUntil settled/)
      const registered = deno.lines.findIndex((l) => l.includes("EdgeRuntime.waitUntil registered"))
      const processed = deno.lines.findIndex((l) => l.includes("process-data: processed 100 item(s)"))
      const settled = deno.lines.findIndex((l) => l.includes("EdgeRuntime.waitUntil settled"))
      assert.isTrue(registered >= 0 && registered < processed && processed < settled, deno.lines.join("\n"))

      const invalid = yield* http(PayloadInvalid, base, { method: "POST", headers: json, body: JSON.stringify({ data: [{ id: "a", value: "x" }] }) })
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(invalid.json.path, "data.0.value")

      // 300 items: six seconds of work, cut short by the runtime's shutdown
      const long = yield* http(TaskApi.Submitted, base, { method: "POST", headers: json, body: JSON.stringify(items(300)) })
      assert.strictEqual(long.status, 202)
      yield* poll(http(TaskRecord, `${base}/tasks/${long.json.id}`), (r) => r.json.status === "processing" && r.json.progress > 0, 250)
      const before = deno.lines.length
      deno.process.kill("SIGUSR2")
      const dispatched = yield* waitForLine(deno, /\[shim\] dispatching beforeunload/, before)
      const dropped = yield* waitForLine(
        deno,
        new RegExp(`dropping 1 unfinished task\\(s\\): ${long.json.id} \\(process-data, pending, attempt 1, \\d+%\\)`),
        dispatched
      )
      const interrupted = deno.lines.findIndex((l, i) => i > dispatched && l.includes("shutdown: interrupting 1 running task(s)"))
      assert.isTrue(interrupted > dispatched && interrupted < dropped, deno.lines.join("\n"))
      assert.notInclude(deno.lines[dropped]!, id)
    }).pipe(Effect.scoped), 60_000)
})
