/**
 * The checks every input passes once, in the engine, before any store sees it, so that the memory,
 * PostgreSQL and Supabase stores give one answer to one bad input: times that are dates every store
 * can hold, 32-bit priorities, and text without what PostgreSQL refuses (a NUL character, a lone
 * UTF-16 surrogate) in payloads, ids, keys, name filters and cursors.
 *
 * @since 0.2.0
 * @internal
 */
import { Duration } from "effect"
import { OptionInvalid } from "../services/TaskError.js"
import type { TaskFilter } from "../services/TaskRecord.js"
import { maxTimeMillis } from "../services/TaskRecord.js"


const minInt32 = -(2 ** 31)
const maxInt32 = 2 ** 31 - 1

/** Payloads nested deeper than this are refused (PostgreSQL's parser runs out of stack well past it). */
export const maxPayloadDepth = 1000

// one scan finds every suspicious character; only then is the text examined closely
const suspicious = /[\u0000\ud800-\udfff]/
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** What is wrong with a text no store can keep, or `undefined` when it is fine. @internal */
export const textIssue = (text: string): string | undefined => {
  if (!suspicious.test(text)) return undefined
  if (text.includes("\u0000")) return "contains a NUL character (\\u0000), which no store can keep"
  if (loneSurrogate.test(text)) return "contains a lone UTF-16 surrogate (not valid Unicode)"
  return undefined
}

/** A value shown in an error message: at most 100 characters of it. @internal */
export const shown = (value: unknown): string => {
  let text: string
  try {
    text = typeof value === "string" ? JSON.stringify(value) : value instanceof Date ? `Date(${value.getTime()})` : String(value)
  } catch {
    text = Object.prototype.toString.call(value)
  }
  return text.length > 100 ? `${text.slice(0, 100)}…` : text
}

const invalid = (option: string, value: unknown, issue: string) => new OptionInvalid({ option, value: shown(value), issue })

/** The priority, or why it is not one. @internal */
export const priority = (value: number | undefined): number | OptionInvalid => {
  if (value === undefined) return 0
  if (!Number.isInteger(value) || value < minInt32 || value > maxInt32) {
    return invalid("priority", value, `must be an integer from ${minInt32} to ${maxInt32}`)
  }
  return value
}

/** When a task submitted at `now` runs, in epoch millis, or why the options give no such time. @internal */
export const runAtMillis = (
  now: number,
  runAt: Date | undefined,
  delay: Duration.DurationInput | undefined
): number | OptionInvalid => {
  if (runAt !== undefined) {
    const millis = runAt instanceof Date ? runAt.getTime() : Number.NaN
    if (!(millis >= 0 && millis <= maxTimeMillis)) {
      return invalid("runAt", runAt, "must be a valid date from 1970 to the end of 9999")
    }
    return millis
  }
  if (delay === undefined) return now
  let millis: number
  try {
    millis = Duration.toMillis(Duration.decode(delay))
  } catch {
    return invalid("delay", delay, "is not a duration")
  }
  if (!(millis >= 0) || !(now + millis <= maxTimeMillis)) {
    return invalid("delay", delay, "must be a finite duration that ends before the year 10000")
  }
  return now + millis
}

/** Why a text option cannot match anything a store holds, or `undefined`. @internal */
export const text = (option: string, value: string | undefined): OptionInvalid | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "string") return invalid(option, value, "must be a string")
  const issue = textIssue(value)
  return issue === undefined ? undefined : invalid(option, value, issue)
}

/**
 * Whether an encoded value holds nothing a store cannot keep: the scan every submit and every
 * result pays, so it allocates nothing (no path, no closures, `for...in` rather than
 * `Object.keys`); only a value that fails it is walked again for the path (`payloadIssue`).
 */
const storableScan = (value: unknown, depth: number): boolean => {
  switch (typeof value) {
    case "string":
      return !suspicious.test(value) || textIssue(value) === undefined
    case "bigint":
    case "function":
    case "symbol":
      return false
    case "object": {
      if (value === null) return true
      if (depth >= maxPayloadDepth) return false
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!storableScan(value[i], depth + 1)) return false
        return true
      }
      for (const key in value) {
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue
        if (suspicious.test(key) && textIssue(key) !== undefined) return false
        if (!storableScan((value as Record<string, unknown>)[key], depth + 1)) return false
      }
      return true
    }
    default:
      return true
  }
}

/**
 * The first place in an encoded payload that no store can keep (a string or key with a NUL or a
 * lone surrogate, a value JSON cannot hold, or nesting deeper than `maxPayloadDepth`), or
 * `undefined`. @internal
 */
export const payloadIssue = (value: unknown): { readonly path: string; readonly issue: string } | undefined => {
  if (storableScan(value, 0)) return undefined
  const path: Array<string | number> = []
  const at = (issue: string) => ({ path: path.length === 0 ? "(root)" : path.join("."), issue })
  const visit = (value: unknown, depth: number): { readonly path: string; readonly issue: string } | undefined => {
    if (typeof value === "string") {
      const issue = textIssue(value)
      return issue === undefined ? undefined : at(issue)
    }
    if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") {
      return at(`is a ${typeof value}, which JSON cannot hold`)
    }
    if (value === null || typeof value !== "object") return undefined
    if (depth >= maxPayloadDepth) return at(`is nested deeper than ${maxPayloadDepth} levels`)
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        path.push(i)
        const found = visit(value[i], depth + 1)
        if (found !== undefined) return found
        path.pop()
      }
      return undefined
    }
    for (const key of Object.keys(value)) {
      path.push(key)
      const keyIssue = textIssue(key)
      if (keyIssue !== undefined) return at(`key ${keyIssue}`)
      const found = visit((value as Record<string, unknown>)[key], depth + 1)
      if (found !== undefined) return found
      path.pop()
    }
    return undefined
  }
  return visit(value, 0)
}

/** Why a listing's filter cannot be asked of a store, or `undefined`. @internal */
export const filter = (filter: TaskFilter): OptionInvalid | undefined => {
  const limit = filter.limit
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0 && limit <= maxInt32)) {
    return invalid("limit", limit, `must be an integer from 0 to ${maxInt32}`)
  }
  return text("name", filter.name) ?? text("cursor", filter.cursor)
}

/** How long the timer may sleep: never longer than a JS timer can (`setTimeout` fires at once past 2^31 - 1 ms). */
export const maxTimerMillis = 60 * 60 * 1000

const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/**
 * A text the engine writes itself (an error's message, a pretty cause) made storable: a NUL or a
 * lone surrogate becomes U+FFFD. @internal
 */
export const storable = (text: string): string => (suspicious.test(text) ? text.replace(unstorable, "\ufffd") : text)

/** An encoded value made storable as `storable` makes text, keys included; deeper than `maxPayloadDepth`, `null`. @internal */
export const storableValue = (value: unknown, depth = 0): unknown => {
  if (typeof value === "string") return storable(value)
  if (value === null || typeof value !== "object") return value
  if (depth >= maxPayloadDepth) return null
  if (Array.isArray(value)) return value.map((item) => storableValue(item, depth + 1))
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) out[storable(key)] = storableValue((value as Record<string, unknown>)[key], depth + 1)
  return out
}
