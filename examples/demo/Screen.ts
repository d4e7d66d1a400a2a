/**
 * What the demo shows while it runs. It follows every record change from the store and, on a
 * terminal, redraws one progress bar per task in place (ANSI escapes), with log lines scrolling
 * above the bars; piped into a file or `cat`, it prints plain log lines instead: one per
 * submit, start, quarter of progress, retry and end.
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Clock, Effect, Fiber, HashMap, Logger, Option, Queue, Ref, Schedule, Stream } from "effect"
import type { TaskRecord } from "../../src/index.js"
import { TaskStore } from "../../src/index.js"
import { labelOf } from "./Tasks.js"

type Tracked = {
  readonly order: ReadonlyArray<string>
  readonly records: HashMap.HashMap<string, TaskRecord.TaskRecord>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Screen {
  /** Prints a line that stays: above the bars on a terminal. */
  readonly line: (text: string) => Effect.Effect<void>
  /** Routes `Effect.log` (the handlers', the engine's) to `line`. */
  readonly logger: Logger.Logger<unknown, void>
  /** Follows the store's changes and, on a terminal, redraws until `stop` or the scope closes. */
  readonly follow: Effect.Effect<void, never, TaskStore.TaskStore | Scope.Scope>
  /** Draws the last frame and stops redrawing. */
  readonly stop: Effect.Effect<void>
}

const esc = "\u001b["

const color = (tty: boolean) => (code: number, text: string): string => tty ? `${esc}${code}m${text}${esc}0m` : text

const seconds = (millis: number): string => `${(millis / 1_000).toFixed(1)}s`

const pad = (text: string, width: number): string =>
  text.length >= width ? text.slice(0, width - 1) + "…" : text + " ".repeat(width - text.length)

const bar = (percent: number, width: number): string => {
  const full = Math.round((percent / 100) * width)
  return "█".repeat(full) + "░".repeat(width - full)
}

/** The status column: what a person wants to know about the task now. */
const stateOf = (record: TaskRecord.TaskRecord, now: number): string => {
  const wait = record.runAt.getTime() - now
  switch (record.status) {
    case "pending":
      if (wait > 0) return record.attempt > 0 ? `retry in ${seconds(wait)}` : `runs in ${seconds(wait)}`
      if (record.attempt > 0) return "queued for retry"
      return record.priority !== 0 ? `queued (priority ${record.priority})` : "queued"
    case "failed":
      return `failed: ${record.error?.tag ?? "?"}`
    default:
      return record.status
  }
}

const statusColor = (record: TaskRecord.TaskRecord): number => {
  switch (record.status) {
    case "completed":
      return 32
    case "failed":
      return 31
    case "cancelled":
      return 33
    case "processing":
      return 36
    case "pending":
      return record.attempt > 0 ? 33 : 90
  }
}

const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

const icon = (record: TaskRecord.TaskRecord, frame: number): string => {
  switch (record.status) {
    case "completed":
      return "✔"
    case "failed":
      return "✖"
    case "cancelled":
      return "⊘"
    case "processing":
      return spinner[frame % spinner.length]!
    case "pending":
      return record.attempt > 0 ? "↻" : "·"
  }
}

const resultOf = (record: TaskRecord.TaskRecord): string =>
  record.result === null || record.result === undefined ? "" : `: ${JSON.stringify(record.result)}`

/** The plain-text lines one record change is worth (none for most progress steps). */
const eventsOf = (
  before: TaskRecord.TaskRecord | undefined,
  record: TaskRecord.TaskRecord,
  now: number,
  verbose: boolean
): ReadonlyArray<string> => {
  const who = `${pad(record.name, 17)} ${pad(labelOf(record), 30)}`
  if (before === undefined) {
    if (!verbose) return []
    const wait = record.runAt.getTime() - now
    const extra = [
      record.priority !== 0 ? `priority ${record.priority}` : "",
      wait > 0 ? `runs in ${seconds(wait)}` : ""
    ].filter((s) => s !== "").join(", ")
    return [`${who} submitted ${record.id}${extra === "" ? "" : ` (${extra})`}`]
  }
  if (before.status === "pending" && record.status === "processing") {
    return verbose ? [`${who} started, attempt ${record.attempt}`] : []
  }
  if (before.status === "processing" && record.status === "pending") {
    const backoff = Math.max(0, record.runAt.getTime() - record.updatedAt.getTime())
    return [`${who} attempt ${before.attempt} failed: ${record.error?.message ?? "?"}; retry in ${backoff} ms`]
  }
  if (record.status === "processing" && verbose) {
    const quarter = Math.floor(record.progress / 25)
    return quarter > Math.floor(before.progress / 25) && quarter < 4 ? [`${who} ${quarter * 25}%`] : []
  }
  if (before.status !== record.status) {
    switch (record.status) {
      case "completed":
        return verbose
          ? [`${who} completed after ${record.attempt} attempt(s)${resultOf(record)}`]
          : []
      case "failed":
        return [`${who} FAILED after ${record.attempt} attempt(s): ${record.error?.message ?? "?"}`]
      case "cancelled":
        return [`${who} cancelled at ${Math.round(record.progress)}%`]
      default:
        return []
    }
  }
  return []
}

/**
 * A screen for stdout: bars when it is a terminal, plain lines otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: { readonly tty: boolean; readonly title: string }): Effect.Effect<Screen, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { title, tty } = options
    const start = yield* Clock.currentTimeMillis
    const paint = color(tty)
    const pending = yield* Queue.unbounded<string>()
    const tracked = yield* Ref.make<Tracked>({ order: [], records: HashMap.empty() })
    const drawn = yield* Ref.make(0) // height of the frame on screen, to move back over it
    const renderer = yield* Ref.make<Option.Option<Fiber.RuntimeFiber<unknown>>>(Option.none())
    let frame = 0
    // while bars are drawn, lines wait in a queue for the next frame, so they never tear the bars
    let drawing = false

    const stamp = (millis: number) => paint(90, `[${(Math.max(0, millis - start) / 1_000).toFixed(2).padStart(5)}s]`)
    const write = (text: string) => Effect.sync(() => process.stdout.write(text))
    const emit = (text: string): void => {
      if (drawing) Queue.unsafeOffer(pending, text)
      else process.stdout.write(text + "\n")
    }
    const line = (text: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => emit(`${stamp(now)} ${text}`)))

    const logger = Logger.make<unknown, void>(({ date, logLevel, message }) => {
      const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
      const level = logLevel.label === "INFO" ? "" : paint(33, `${logLevel.label} `)
      emit(`${stamp(date.getTime())} ${level}${text}`)
    })

    const render = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const logs = yield* Queue.takeAll(pending)
      const { order, records } = yield* Ref.get(tracked)
      const width = Math.max(40, (process.stdout.columns ?? 100) - 1)
      const all = order.flatMap((id) => Option.toArray(HashMap.get(records, id)))
      const count = (status: TaskRecord.TaskStatus) => all.filter((r) => r.status === status).length
      const lines = [
        paint(1, `${title} · ${seconds(now - start)}`),
        `running ${count("processing")} · waiting ${count("pending")} · completed ${count("completed")} · failed ${
          count("failed")
        } · cancelled ${count("cancelled")}`,
        ...all.map((record) => {
          const row = `${icon(record, frame)} ${pad(record.name, 17)} ${pad(labelOf(record), 30)} #${record.attempt} ${
            bar(record.progress, 20)
          } ${Math.round(record.progress).toString().padStart(3)}%  ${stateOf(record, now)}`
          return paint(statusColor(record), row.length > width ? row.slice(0, width) : row)
        })
      ]
      frame++
      const height = yield* Ref.getAndSet(drawn, lines.length)
      const back = height > 0 ? `${esc}${height}F${esc}J` : ""
      const logText = Array.from(logs, (text) => text + "\n").join("")
      yield* write(back + logText + lines.map((text) => text + "\n").join(""))
    })

    const follow = Effect.gen(function*() {
      const store = yield* TaskStore.TaskStore
      // subscribed once this has run, so no change made after it is missed
      const changes = yield* store.subscribe
      yield* changes.pipe(
        Stream.runForEach((record) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const before = yield* Ref.modify(tracked, (state) => {
              const previous = HashMap.get(state.records, record.id)
              const next: Tracked = {
                order: Option.isSome(previous) ? state.order : [...state.order, record.id],
                records: HashMap.set(state.records, record.id, record)
              }
              return [Option.getOrUndefined(previous), next] as const
            })
            for (const text of eventsOf(before, record, now, !tty)) yield* line(text)
          })
        ),
        Effect.forkScoped
      )
      if (!tty) return yield* line(title)
      drawing = true
      yield* write(`${esc}?25l`) // hide the cursor while redrawing
      yield* Effect.addFinalizer(() => write(`${esc}?25h`))
      yield* Ref.set(renderer, Option.some(yield* Effect.forkScoped(Effect.repeat(render, Schedule.spaced("80 millis")))))
    })

    const stop = Effect.gen(function*() {
      const fiber = yield* Ref.getAndSet(renderer, Option.none())
      if (Option.isNone(fiber)) return
      yield* Fiber.interrupt(fiber.value)
      yield* render
      drawing = false
      yield* write(`${esc}?25h`)
    })

    return { line, logger, follow, stop }
  })
