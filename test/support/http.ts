/**
 * Helpers for the HTTP tests: calling a web handler with no port, and reading server-sent events.
 */
import { Effect, Layer, Schema } from "effect"
import type * as WaitUntil from "../../src/layers/WaitUntil.js"
import { TaskEngine, WebHandler } from "../../src/index.js"

export type Handler = (request: Request) => Promise<Response>

/** Decodes a parsed JSON body with `schema`; throws, failing the test, on any other shape. */
export type As = <A, I>(schema: Schema.Schema<A, I>) => A

const decoderOf = (json: unknown): As => (schema) => Schema.decodeUnknownSync(schema)(json)

/** Any error answer: its tag, for the assertions on which error came back. */
export const Tagged = Schema.Struct({ _tag: Schema.String })

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The parsed body (`undefined` when empty or not JSON), for whole-value assertions. */
  readonly json: unknown
  /** The parsed body, decoded: reach into an answer through the schema it should have. */
  readonly as: As
}

export interface CallOptions {
  readonly body?: unknown
  readonly rawBody?: BodyInit
  readonly headers?: Record<string, string>
  readonly token?: string
}

const toRequest = (method: string, path: string, options: CallOptions): Request => {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let body: BodyInit | undefined = options.rawBody
  if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers["content-type"] ??= "application/json"
  }
  const init: RequestInit & { duplex?: "half" } = { method, headers }
  if (body !== undefined) {
    init.body = body
    if (body instanceof ReadableStream) init.duplex = "half"
  }
  return new Request(`http://127.0.0.1${path}`, init)
}

/** Sends one request through the handler and reads the whole answer. */
export const call = (
  handler: Handler,
  method: string,
  path: string,
  options: CallOptions = {}
): Effect.Effect<Reply> =>
  Effect.promise(() =>
    handler(toRequest(method, path, options)).then((response) =>
      response.text().then((text): Reply => {
        let json: unknown = undefined
        try {
          json = text.length > 0 ? JSON.parse(text) : undefined
        } catch {
          json = undefined
        }
        return { status: response.status, headers: response.headers, text, json, as: decoderOf(json) }
      })
    )
  )

/** Sends one request and gives the response unread (for event streams). */
export const open = (handler: Handler, path: string, options: CallOptions = {}): Effect.Effect<Response> =>
  Effect.promise(() => handler(toRequest("GET", path, options)))

export interface SseEvent {
  readonly event: string
  /** The parsed `data:` line. */
  readonly data: unknown
  /** The `data:` line decoded, as `Reply.as`. */
  readonly as: As
}

const parse = (block: string): SseEvent | undefined => {
  let event = "message"
  let data = ""
  let any = false
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) {
      event = line.slice(7)
      any = true
    } else if (line.startsWith("data: ")) {
      data += line.slice(6)
      any = true
    }
  }
  if (!any) return undefined
  const parsed: unknown = data.length > 0 ? JSON.parse(data) : undefined
  return { event, data: parsed, as: decoderOf(parsed) }
}

/**
 * A reader of a server-sent event stream: `until(predicate)` reads (and keeps) events until one
 * satisfies the predicate or the stream ends; `close` cancels the stream.
 */
export const events = (response: Response) => {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const seen: Array<SseEvent> = []
  let buffer = ""
  let ended = false
  const next = (): Promise<void> =>
    reader.read().then((chunk) => {
      if (chunk.done) {
        ended = true
        return
      }
      buffer += decoder.decode(chunk.value, { stream: true })
      const blocks = buffer.split("\n\n")
      buffer = blocks.pop() ?? ""
      for (const block of blocks) {
        const parsed = parse(block)
        if (parsed !== undefined) seen.push(parsed)
      }
    })
  const until = (predicate: (event: SseEvent) => boolean): Effect.Effect<ReadonlyArray<SseEvent>> =>
    Effect.promise(() => {
      const loop = (from: number): Promise<ReadonlyArray<SseEvent>> => {
        for (let i = from; i < seen.length; i++) if (predicate(seen[i]!)) return Promise.resolve(seen.slice())
        if (ended) return Promise.resolve(seen.slice())
        const length = seen.length
        return next().then(() => loop(length))
      }
      return loop(0)
    })
  const close = Effect.promise(() => reader.cancel().catch(() => undefined))
  return { until, close, seen: () => seen.slice(), ended: () => ended }
}

/** The web handler over `engine` (and whatever `extra` adds), disposed with the test's scope. */
export const serve = (
  engine: TaskEngine.TaskEngine,
  options: WebHandler.Options = {},
  extra: Layer.Layer<never> | Layer.Layer<WaitUntil.WaitUntil> = Layer.empty
) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() =>
        WebHandler.make(Layer.merge(Layer.succeed(TaskEngine.TaskEngine, engine), extra), {
          disposeOnUnload: false,
          ...options
        })
      ),
      (web) => Effect.promise(() => web.dispose())
    ),
    (web): Handler => web.handler
  )
