/**
 * Reading a JSON request body under a size limit. The platform's body readers load the whole body
 * whatever its size; this one refuses a declared `Content-Length` over the limit before reading,
 * and stops reading a streamed body as soon as it passes the limit.
 *
 * @since 0.1.0
 */
import type { HttpServerRequest } from "@effect/platform"
import { Chunk, Effect, Stream } from "effect"
import { MalformedBody, PayloadTooLarge, UnsupportedMediaType } from "./HttpError.js"

/**
 * The default limit of a request body: 1 MiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxBytes = 1_048_576

const decoder = new TextDecoder()

const concat = (chunks: Chunk.Chunk<Uint8Array>, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * The raw bytes of the body, failing with `PayloadTooLarge` past `maxBytes`. A request that
 * declares no body (no `Content-Length`, no `Transfer-Encoding`) and has none gives no bytes.
 *
 * @since 0.1.0
 * @category reading
 */
export const bytes = (
  request: HttpServerRequest.HttpServerRequest,
  maxBytes: number
): Effect.Effect<Uint8Array, PayloadTooLarge | MalformedBody> => {
  const declared = request.headers["content-length"]
  if (declared !== undefined) {
    const length = Number(declared)
    if (Number.isFinite(length) && length > maxBytes) return Effect.fail(new PayloadTooLarge({ limitBytes: maxBytes }))
    if (length === 0) return Effect.succeed(new Uint8Array(0))
  }
  const announced = declared !== undefined || request.headers["transfer-encoding"] !== undefined
  interface Read {
    readonly size: number
    readonly chunks: Chunk.Chunk<Uint8Array>
  }
  return Stream.runFoldEffect(
    request.stream,
    { size: 0, chunks: Chunk.empty<Uint8Array>() } as Read,
    (acc: Read, chunk: Uint8Array): Effect.Effect<Read, PayloadTooLarge> => {
      const size = acc.size + chunk.length
      return size > maxBytes
        ? Effect.fail(new PayloadTooLarge({ limitBytes: maxBytes }))
        : Effect.succeed({ size, chunks: Chunk.append(acc.chunks, chunk) })
    }
  ).pipe(
    Effect.map((acc) => concat(acc.chunks, acc.size)),
    Effect.catchTag("RequestError", (error) =>
      // a web Request without a body has no stream to read: that is an empty body
      announced
        ? Effect.fail(new MalformedBody({ reason: `the body could not be read: ${error.message}` }))
        : Effect.succeed(new Uint8Array(0)))
  )
}

/**
 * The deepest nesting of arrays and objects a JSON body may have: deeper values would overflow
 * the stack of whatever walks them next (the Schema, the log, the store), so they are refused.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDepth = 256

/** The deepest nesting of `[` and `{` in JSON text, strings skipped. */
const depthOf = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      depth++
      if (depth > deepest) deepest = depth
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return deepest
}

/**
 * Whether a `Content-Type` declares JSON: `application/json` or a `+json` type, any parameters.
 *
 * @since 0.1.0
 * @category reading
 */
export const isJsonContentType = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return false
  const media = contentType.split(";")[0]!.trim().toLowerCase()
  return media === "application/json" || (media.startsWith("application/") && media.endsWith("+json"))
}

/**
 * The body parsed as JSON (`undefined` when empty), under the size limit and `maxDepth`. A body that is not
 * declared `application/json` fails with `UnsupportedMediaType` (a page on another site can send
 * `text/plain` or a form without the browser's consent; JSON it cannot).
 *
 * @since 0.1.0
 * @category reading
 */
export const json = (
  request: HttpServerRequest.HttpServerRequest,
  maxBytes: number
): Effect.Effect<unknown, PayloadTooLarge | MalformedBody | UnsupportedMediaType> =>
  Effect.flatMap(bytes(request, maxBytes), (body): Effect.Effect<unknown, MalformedBody | UnsupportedMediaType> => {
    if (body.length === 0) return Effect.void
    const contentType = request.headers["content-type"]
    if (!isJsonContentType(contentType)) {
      return Effect.fail(new UnsupportedMediaType({ contentType: (contentType ?? "").slice(0, 100) }))
    }
    const text = decoder.decode(body)
    if (depthOf(text) > maxDepth) {
      return Effect.fail(new MalformedBody({ reason: `it nests arrays and objects deeper than ${maxDepth} levels` }))
    }
    return Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (error) => new MalformedBody({ reason: error instanceof Error ? error.message : String(error) })
    })
  })
