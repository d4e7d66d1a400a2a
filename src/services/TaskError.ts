/**
 * The errors that cross the library's boundary: returned to callers, stored on records and sent
 * over HTTP. Each carries what a person needs to act on it, and a message that says so.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A payload did not match its task's Schema; nothing was stored. `path` names the bad field.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadInvalid extends Schema.TaggedError<PayloadInvalid>()("PayloadInvalid", {
  task: Schema.String,
  path: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `Invalid payload for task "${this.task}" at ${this.path}: ${this.issue}`
  }
}

/**
 * An option of a call is out of its range: a `delay` or `runAt` that is not a date the stores can
 * hold, a `priority` that is not a 32-bit integer, a `name` filter or `cursor` with text no
 * record can hold. Nothing was stored. `value` shows the bad value, shortened.
 *
 * @since 0.2.0
 * @category errors
 */
export class OptionInvalid extends Schema.TaggedError<OptionInvalid>()("OptionInvalid", {
  option: Schema.String,
  value: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `Invalid option ${this.option} (${this.value}): ${this.issue}`
  }
}

/**
 * A task name that no definition or handler is registered under.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownTask extends Schema.TaggedError<UnknownTask>()("UnknownTask", {
  name: Schema.String
}) {
  override get message(): string {
    return `Unknown task "${this.name}": register its handler (Definition.toLayer) or declare the definition with the engine`
  }
}

/**
 * No task has this id (never submitted, or deleted by cleanup).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `No task with id "${this.id}" (never submitted, or removed by cleanup after its retention)`
  }
}

/**
 * The engine's backlog is at `maxQueued`. Retry later, or submit with `whenFull: "wait"`.
 *
 * @since 0.1.0
 * @category errors
 */
export class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", {
  task: Schema.String,
  maxQueued: Schema.Number
}) {
  override get message(): string {
    return `Queue full: ${this.maxQueued} tasks are already waiting; task "${this.task}" was not submitted. Retry later or submit with whenFull: "wait"`
  }
}

/**
 * A task with this idempotency key exists already; `id` is the existing task's id.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateTask extends Schema.TaggedError<DuplicateTask>()("DuplicateTask", {
  id: Schema.String,
  idempotencyKey: Schema.String
}) {
  override get message(): string {
    return `A task with idempotency key "${this.idempotencyKey}" exists already: ${this.id}`
  }
}

/**
 * An attempt ran longer than its task's `timeout` and was interrupted. The retry schedule sees it
 * like any other failure.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskTimeout extends Schema.TaggedError<TaskTimeout>()("TaskTimeout", {
  id: Schema.String,
  task: Schema.String,
  attempt: Schema.Number,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `Task "${this.task}" (${this.id}) attempt ${this.attempt} timed out after ${this.timeoutMillis} ms`
  }
}

/**
 * The task was cancelled before it finished.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskCancelled extends Schema.TaggedError<TaskCancelled>()("TaskCancelled", {
  id: Schema.String
}) {
  override get message(): string {
    return `Task ${this.id} was cancelled`
  }
}

/**
 * The task died of a defect (a bug: a thrown exception, `Effect.die`), or its stored result no
 * longer matches the definition's Schema. Defects are not retried. `cause` is the pretty cause.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskDefect extends Schema.TaggedError<TaskDefect>()("TaskDefect", {
  id: Schema.String,
  cause: Schema.String
}) {
  override get message(): string {
    return `Task ${this.id} died of a defect: ${this.cause}`
  }
}

/**
 * The store could not be reached or refused an operation. Engines retry store operations on a
 * schedule; this reaches the caller only when a submit or a query could not be done.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  operation: Schema.String,
  reason: Schema.String,
  /** The database's SQLSTATE, when it refused the call (`22P05`, `40P01`, ...). */
  code: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Task store unavailable during ${this.operation}: ${this.reason}`
  }
  /**
   * The database refused the call for good (SQLSTATE class 22 data exception, 23 integrity
   * violation, 42 syntax or access rule): the same call would fail again, so it is not retried.
   */
  get permanent(): boolean {
    const code = this.code
    return code !== undefined && (code.startsWith("22") || code.startsWith("23") || code.startsWith("42"))
  }
}

/**
 * The engine is shutting down (its scope is closing) and takes no new tasks.
 *
 * @since 0.1.0
 * @category errors
 */
export class EngineClosed extends Schema.TaggedError<EngineClosed>()("EngineClosed", {}) {
  override get message(): string {
    return "The task engine is shutting down and takes no new tasks"
  }
}
