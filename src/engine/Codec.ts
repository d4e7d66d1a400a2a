/**
 * The Schema codecs of a task definition, compiled once: encoding a payload at submit (which
 * validates it), decoding it for the handler, and the same for results and typed failures. Also
 * the log-safe view of a payload, with every `Redacted` value hidden.
 *
 * @since 0.1.0
 * @internal
 */
import type { Either } from "effect"
import { ParseResult, Predicate, Redacted, Schema } from "effect"

/** @internal */
export interface Codec<A> {
  readonly encode: (value: A) => Either.Either<unknown, ParseResult.ParseError>
  readonly decode: (encoded: unknown) => Either.Either<A, ParseResult.ParseError>
}

/** @internal */
export const make = <A, I>(schema: Schema.Schema<A, I, never>): Codec<A> => ({
  encode: Schema.encodeEither(schema) as (value: A) => Either.Either<unknown, ParseResult.ParseError>,
  decode: Schema.decodeUnknownEither(schema)
})

/**
 * The first issue of a parse error: the path to the bad field (`width`, `items.2.url`, `(root)`)
 * and what is wrong with it.
 *
 * @internal
 */
export const firstIssue = (error: ParseResult.ParseError): { readonly path: string; readonly issue: string } => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return { path: "(root)", issue: error.message }
  return { path: first.path.length === 0 ? "(root)" : first.path.map(String).join("."), issue: first.message }
}

/**
 * A copy of a decoded value fit for logs and error reports: `Redacted` values become
 * `"<redacted>"`; everything else is kept as plain data.
 *
 * @internal
 */
export const redact = (value: unknown, depth = 0): unknown => {
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (depth > 32 || value === null || typeof value !== "object") return value
  if (value instanceof Date) return value
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1))
  if (!Predicate.isRecord(value)) return String(value)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) out[key] = redact(value[key], depth + 1)
  return out
}
