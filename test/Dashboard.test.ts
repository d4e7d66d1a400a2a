/**
 * The dashboard in real headless Chromium (Debian's `chromium`, or the one `@sparticuz/chromium`
 * ships where it is missing; see `support/Browser.ts`), driven by playwright-core, against
 * the Node server on a free port of 127.0.0.1. Set EFFECT_TASKS_SCREENSHOT=1 to refresh
 * docs/dashboard.png.
 */
import { assert, describe, it } from "@effect/vitest"
import { fileURLToPath } from "node:url"
import { HttpServer } from "@effect/platform"
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import type { Page } from "playwright-core"
import * as Browser from "./support/Browser.js"
import * as NodeServer from "../src/http/NodeServer.js"
import { Progress, Task, TaskApi, TaskEngine, TaskStore } from "../src/index.js"

const token = "dashboard-t0ken"

class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {
  override get message() {
    return `boom: ${this.reason}`
  }
}

/** Climbs 10 % every 150 ms up to 90 %, then waits until cancelled. */
const Crunch = Task.make("crunch", { payload: Schema.Struct({ label: Schema.String }), retry: Schedule.stop })
const CrunchLive = Crunch.toLayer(() =>
  Effect.zipRight(
    Effect.forEach([10, 20, 30, 40, 50, 60, 70, 80, 90], (p) => Effect.zipRight(Effect.sleep("150 millis"), Progress.set(p)), {
      discard: true
    }),
    Effect.never
  )
)
const Echo = Task.make("echo", { payload: Schema.Struct({ text: Schema.String }), success: Schema.String })
const EchoLive = Echo.toLayer(({ text }) => Effect.succeed(text))
const Explode = Task.make("explode", { payload: Schema.Struct({ reason: Schema.String }), failure: Boom, retry: Schedule.stop })
const ExplodeLive = Explode.toLayer(({ reason }) => Effect.fail(new Boom({ reason })))

const ServerLive = NodeServer.layer({ port: 0, host: "127.0.0.1", token }).pipe(
  Layer.provideMerge(
    Layer.mergeAll(CrunchLive, EchoLive, ExplodeLive).pipe(
      Layer.provideMerge(TaskEngine.layer({ maxConcurrent: 5, shutdownTimeout: "100 millis" })),
      Layer.provide(TaskStore.layerMemory)
    )
  )
)

const browser = Browser.launch

const pw = <A>(f: () => Promise<A>) => Effect.promise(f)

const api = (base: string, method: string, path: string, body?: unknown) =>
  pw(() =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    }).then((r) => r.json())
  ).pipe(Effect.flatMap(Schema.decodeUnknown(TaskApi.Submitted)), Effect.orDie)

/** The row's progress and its bar's width, read together. */
const barOf = (page: Page, id: string) =>
  pw(() =>
    page.$eval(`tr[data-id="${id}"]`, (tr) => ({
      progress: Number(tr.getAttribute("data-progress")),
      width: (tr.querySelector(".bar > span") as HTMLElement).style.width
    }))
  )

describe("Dashboard", () => {
  it.live("shows a submitted task, moves its progress bar live, and cancels it on a click", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const address = server.address as HttpServer.TcpAddress
      const base = `http://127.0.0.1:${address.port}`
      const engine = yield* TaskEngine.TaskEngine
      const page = yield* Effect.flatMap(browser, (b) => pw(() => b.newPage({ viewport: { width: 1280, height: 760 } })))
      const errors: Array<string> = []
      page.on("pageerror", (error) => errors.push(error.message))

      yield* pw(() => page.goto(`${base}/`))
      // without the token the API refuses, and the page says so
      yield* pw(() => page.waitForFunction(() => document.getElementById("message")!.textContent!.includes("Unauthorized")))
      yield* pw(() => page.fill("#token", token))
      yield* pw(() => page.dispatchEvent("#token", "change"))
      yield* pw(() => page.waitForSelector("#conn.live", { timeout: 5000 }))

      const hostile = "<img src=x onerror=\"window.__owned=1\">"
      const echo = yield* api(base, "POST", "/tasks/echo", { text: hostile })
      const failed = yield* api(base, "POST", "/tasks/explode", { reason: "<b>disk</b> full" })
      const submitted = yield* api(base, "POST", "/tasks/crunch", { label: "big job" })
      const id: string = submitted.id
      yield* pw(() => page.waitForSelector(`tr[data-id="${id}"]`, { timeout: 5000 }))

      // the bar moves: two different readings, both above zero, the second higher
      yield* pw(() =>
        page.waitForFunction((tid) => Number(document.querySelector(`tr[data-id="${tid}"]`)?.getAttribute("data-progress")) >= 20, id, {
          timeout: 5000
        })
      )
      const first = yield* barOf(page, id)
      yield* pw(() =>
        page.waitForFunction(
          ([tid, p]) => Number(document.querySelector(`tr[data-id="${tid}"]`)?.getAttribute("data-progress")) > Number(p),
          [id, first.progress] as const,
          { timeout: 5000 }
        )
      )
      const second = yield* barOf(page, id)
      assert.isAbove(first.progress, 0)
      assert.isAbove(second.progress, first.progress)
      assert.strictEqual(first.width, `${first.progress}%`)
      assert.strictEqual(second.width, `${second.progress}%`)
      assert.strictEqual(yield* pw(() => page.textContent(`tr[data-id="${id}"] .status`)), "processing")

      // payloads and errors are text, never markup
      yield* pw(() => page.waitForSelector(`tr[data-id="${failed.id}"][data-status="failed"]`, { timeout: 5000 }))
      const payloadText = yield* pw(() => page.textContent(`tr[data-id="${echo.id}"] .payload`))
      assert.strictEqual(payloadText, JSON.stringify({ text: hostile }))
      assert.strictEqual(yield* pw(() => page.$$eval("#tasks img, #tasks b", (els) => els.length)), 0)
      assert.isUndefined(yield* pw(() => page.evaluate(() => (window as unknown as { __owned?: unknown }).__owned)))
      assert.include((yield* pw(() => page.textContent(`tr[data-id="${failed.id}"] .error`))) ?? "", "<b>disk</b> full")

      // cancel from the page
      yield* pw(() => page.click(`tr[data-id="${id}"] button.cancel`))
      yield* pw(() => page.waitForSelector(`tr[data-id="${id}"][data-status="cancelled"]`, { timeout: 5000 }))
      assert.strictEqual(Option.getOrThrow(yield* engine.get(id)).status, "cancelled")
      assert.isTrue(yield* pw(() => page.$eval(`tr[data-id="${id}"] button.retry`, (b) => !(b as HTMLButtonElement).disabled)))

      // filters: by status, then by name
      yield* pw(() => page.selectOption("#status", "cancelled"))
      yield* pw(() =>
        page.waitForFunction(() => Array.from(document.querySelectorAll("#tasks tr[data-id]")).every((tr) => tr.getAttribute("data-status") === "cancelled"))
      )
      assert.strictEqual(yield* pw(() => page.$$eval("#tasks tr[data-id]", (rows) => rows.length)), 1)
      yield* pw(() => page.selectOption("#status", ""))
      yield* pw(() => page.selectOption("#name", "echo"))
      yield* pw(() =>
        page.waitForFunction(() => {
          const rows = Array.from(document.querySelectorAll("#tasks tr[data-id]"))
          return rows.length === 1 && rows[0]!.querySelector(".name")!.textContent === "echo"
        })
      )

      // the figures at a glance
      yield* pw(() => page.waitForFunction(() => document.querySelector('[data-stat="cancelled"] .value')?.textContent === "1"))
      assert.strictEqual(yield* pw(() => page.textContent('[data-stat="failed"] .value')), "1")
      assert.deepStrictEqual(errors, [])

      if (process.env.EFFECT_TASKS_SCREENSHOT === "1") {
        yield* pw(() => page.selectOption("#name", ""))
        yield* api(base, "POST", "/tasks/crunch", { label: "nightly export" })
        yield* api(base, "POST", "/tasks/echo", { text: "welcome e-mail for ada@example.test" })
        yield* api(base, "POST", "/tasks/explode", { reason: "upstream returned 503" })
        yield* api(base, "POST", "/tasks/crunch", { label: "thumbnail batch 7" })
        yield* Effect.sleep("900 millis")
        const path = fileURLToPath(new URL("../docs/dashboard.png", import.meta.url))
        yield* pw(() => page.screenshot({ path, fullPage: true }))
      }
    }).pipe(Effect.scoped, Effect.provide(ServerLive)), 60_000)
})
