/**
 * The demo's stand-in for the outside world (no network): a mail server that is down for its
 * first deliveries to one domain, a file system, an image resizer with a cold cache, and two
 * databases to sync. Handlers reach it through their layer's context, as they would a real client.
 *
 * @since 0.1.0
 */
import { Effect, HashMap, HashSet, Option, Ref, Schema } from "effect"

/**
 * The mail server could not take the message now; worth trying again.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpUnavailable extends Schema.TaggedError<SmtpUnavailable>()("SmtpUnavailable", {
  host: Schema.String
}) {
  override get message(): string {
    return `SMTP server ${this.host} unavailable (421), try again later`
  }
}

/**
 * The recipient does not exist; trying again cannot help.
 *
 * @since 0.1.0
 * @category errors
 */
export class MailboxNotFound extends Schema.TaggedError<MailboxNotFound>()("MailboxNotFound", {
  to: Schema.String
}) {
  override get message(): string {
    return `Mailbox ${this.to} does not exist (550)`
  }
}

/** Deliveries to this domain fail with `SmtpUnavailable` this many times before one succeeds. */
const flakyDomain = "flaky.example"
const flakyFailures = 2

/**
 * @since 0.1.0
 * @category services
 */
export class World extends Effect.Service<World>()("demo/World", {
  effect: Effect.gen(function*() {
    const deliveries = yield* Ref.make(HashMap.empty<string, number>())
    const outbox = yield* Ref.make<ReadonlyArray<string>>([])
    const files = yield* Ref.make(HashSet.empty<string>())
    const warmImages = yield* Ref.make(HashSet.empty<string>())
    const source = Array.from({ length: 480 }, (_, i) => ({ id: i + 1, version: 1 + (i % 3) }))
    const target = yield* Ref.make(HashMap.empty<number, number>())

    const sendEmail = (to: string, subject: string): Effect.Effect<void, SmtpUnavailable | MailboxNotFound> =>
      Effect.gen(function*() {
        yield* Effect.sleep("60 millis")
        const domain = to.slice(to.indexOf("@") + 1)
        if (domain.endsWith(".invalid")) return yield* new MailboxNotFound({ to })
        const tries = yield* Ref.modify(deliveries, (seen) => {
          const n = Option.getOrElse(HashMap.get(seen, to), () => 0) + 1
          return [n, HashMap.set(seen, to, n)] as const
        })
        if (domain === flakyDomain && tries <= flakyFailures) {
          return yield* new SmtpUnavailable({ host: `smtp.${domain}` })
        }
        yield* Ref.update(outbox, (sent) => [...sent, `${to}: ${subject}`])
      })

    /**
     * How long resizing takes: large TIFFs are slow the first time (the decoder's cache is cold)
     * and "scan-4k" is slow every time.
     */
    const resizeMillis = (image: string): Effect.Effect<number> =>
      Ref.modify(warmImages, (warm) => {
        const cold = !HashSet.has(warm, image)
        const millis = image.startsWith("scan-4k") ? 1_500 : image.endsWith(".tiff") && cold ? 1_200 : 320
        return [millis, HashSet.add(warm, image)] as const
      })

    return {
      sendEmail,
      resizeMillis,
      outbox: Ref.get(outbox),
      writeFile: (path: string) => Ref.update(files, HashSet.add(path)),
      removeFile: (path: string) => Ref.update(files, HashSet.remove(path)),
      fileExists: (path: string) => Effect.map(Ref.get(files), HashSet.has(path)),
      /** The rows of the source database, a page at a time. */
      sourcePage: (offset: number, size: number) =>
        Effect.as(Effect.sleep("90 millis"), source.slice(offset, offset + size)),
      sourceSize: source.length,
      /** Writes rows to the target; returns how many were new and how many changed. */
      upsert: (rows: ReadonlyArray<{ readonly id: number; readonly version: number }>) =>
        Ref.modify(target, (table) => {
          let inserted = 0
          let updated = 0
          let next = table
          for (const row of rows) {
            const current = HashMap.get(next, row.id)
            if (Option.isNone(current)) inserted++
            else if (current.value !== row.version) updated++
            next = HashMap.set(next, row.id, row.version)
          }
          return [{ inserted, updated }, next] as const
        }),
      /** Seeds the target with an older copy of part of the source, so a sync has work of both kinds. */
      seedTarget: Ref.set(target, HashMap.fromIterable(source.slice(0, 200).map((row) => [row.id, 1] as const)))
    }
  })
}) {}
