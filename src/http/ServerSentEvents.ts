/**
 * Server-sent events of task records: each record change becomes an `event: record` whose data is
 * the record encoded with the `TaskRecord` Schema; a comment line keeps idle connections open;
 * a stream that ends sends `event: end`, one that fails sends `event: error` and ends.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Schedule, Schema, Stream } from "effect"
import { TaskRecord } from "../services/TaskRecord.js"

/**
 * The content type of an event stream.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "text/event-stream; charset=utf-8"

const encoder = new TextEncoder()

/**
 * One event in the wire format: `event`, optional `id`, and the JSON `data`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const event = (name: string, data: unknown, id?: string): string =>
  `event: ${name}\n${id === undefined ? "" : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`

const encodeRecord = Schema.encode(TaskRecord)

/**
 * Options of an event stream. Every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How often a comment is sent on an idle connection, so proxies keep it open ["15 seconds"]. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /** Records a slow client may lag behind before the oldest are skipped [4096]. */
  readonly buffer?: number | undefined
}

const errorData = (cause: Cause.Cause<unknown>): { readonly tag: string; readonly message: string } => {
  const error = Cause.squash(cause)
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : "Error"
    const message = "message" in error && typeof error.message === "string" ? error.message : String(error)
    return { tag, message }
  }
  return { tag: "Error", message: String(error) }
}

/**
 * The bytes of an event stream of records. It opens with a comment (so headers go out at once),
 * sends one `record` event per record, a comment every `heartbeat`, and `end` (or `error`) last.
 *
 * @since 0.1.0
 * @category encoding
 */
export const fromRecords = <E>(
  records: Stream.Stream<TaskRecord, E>,
  options: Options = {}
): Stream.Stream<Uint8Array> => {
  const heartbeat = Duration.decode(options.heartbeat ?? "15 seconds")
  const events: Stream.Stream<string, unknown> = records.pipe(
    Stream.buffer({ capacity: options.buffer ?? 4096, strategy: "sliding" }),
    Stream.mapEffect((record) => Effect.map(encodeRecord(record), (encoded) => event("record", encoded, record.id)))
  )
  const ended: Stream.Stream<string> = events.pipe(
    Stream.concat(Stream.make(event("end", {}))),
    Stream.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause) ? Stream.empty : Stream.make(event("error", errorData(cause)))
    )
  )
  const beats = Stream.fromSchedule(Schedule.spaced(heartbeat)).pipe(Stream.as(": keep-alive\n\n"))
  return Stream.make(": connected\nretry: 3000\n\n").pipe(
    Stream.concat(Stream.merge(ended, beats, { haltStrategy: "left" })),
    Stream.map((text) => encoder.encode(text))
  )
}
