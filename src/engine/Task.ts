/**
 * Task definitions: a task is a plain value (its name, Schemas, retry policy and timeout), apart
 * from the handler that runs it, which `toLayer` registers with the engine. A producer that only
 * submits needs the definition, not the code.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Schema } from "effect"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import type * as Schedule from "effect/Schedule"
import type { TaskTimeout } from "../services/TaskError.js"
import { defaultSchedule } from "./Retry.js"
import type { TaskEngine } from "./TaskEngine.js"
import { textIssue } from "./Validate.js"

// The engine's tag, rebuilt by its key (the same tag: `Context.GenericTag` tags are equal by
// key) with a type-only import, so that definitions do not import the engine at run time: the
// engine imports the definitions' types, and an import back would be a cycle.
const Engine: Context.Tag<TaskEngine, TaskEngine> = Context.GenericTag<TaskEngine>("effect-tasks/TaskEngine")

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-tasks/Task")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A Schema with no context requirement, as payloads, successes and failures are.
 *
 * @since 0.1.0
 * @category models
 */
export type AnySchema = Schema.Schema<any, any, never> | Schema.Schema<never, never, never>

/**
 * What a handler learns of the attempt it runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskInfo {
  readonly id: string
  readonly name: string
  /** 1 for the first attempt. */
  readonly attempt: number
}

/**
 * A task definition: name, payload / success / failure Schemas, retry policy and timeout.
 *
 * @since 0.1.0
 * @category models
 */
export interface Definition<
  Name extends string,
  Payload extends AnySchema,
  Success extends AnySchema,
  Failure extends AnySchema
> extends Pipeable {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly payloadSchema: Payload
  readonly successSchema: Success
  readonly failureSchema: Failure
  /** The retry policy, fed the typed error (or `TaskTimeout`) of each failed attempt. */
  readonly retry: Schedule.Schedule<unknown, Schema.Schema.Type<Failure> | TaskTimeout>
  /** Which errors are worth retrying; all of them when absent. */
  readonly retryWhile: ((error: Schema.Schema.Type<Failure> | TaskTimeout) => boolean) | undefined
  /** The limit of one attempt; none when absent. */
  readonly timeout: Duration.Duration | undefined
  /**
   * Registers the handler with the `TaskEngine`; the layer's own requirements become the
   * handler's context.
   */
  readonly toLayer: <R = never>(
    handler: (
      payload: Schema.Schema.Type<Payload>,
      task: TaskInfo
    ) => Effect.Effect<Schema.Schema.Type<Success>, Schema.Schema.Type<Failure>, R>
  ) => Layer.Layer<never, never, TaskEngine | R>
}

/**
 * Any task definition.
 *
 * @since 0.1.0
 * @category models
 */
export interface Any extends
  Definition<string, AnySchema, AnySchema, AnySchema>
{}

/**
 * The decoded payload of a definition.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Payload<D> = D extends Definition<string, infer P, infer _S, infer _F> ? Schema.Schema.Type<P> : never

/**
 * The decoded success of a definition.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Success<D> = D extends Definition<string, infer _P, infer S, infer _F> ? Schema.Schema.Type<S> : never

/**
 * The typed failure of a definition.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Failure<D> = D extends Definition<string, infer _P, infer _S, infer F> ? Schema.Schema.Type<F> : never

/**
 * A handler as the engine keeps it, with the context its layer was built in.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler {
  readonly definition: Any
  readonly run: (payload: unknown, task: TaskInfo) => Effect.Effect<unknown, unknown, never>
  readonly context: Context.Context<never>
}

/**
 * Whether a value is a task definition.
 *
 * @since 0.1.0
 * @category guards
 */
export const isDefinition = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * Defines a task. `success` defaults to `Schema.Void`, `failure` to `Schema.Never`, `payload` to
 * `Schema.Void`; `retry` defaults to the guide's policy (3 attempts, waiting 1 s then 2 s); no
 * `timeout` unless given. Use `Schedule.stop` (or `Schedule.recurs(0)`) for no retries.
 *
 * @example
 * import { Schedule, Schema } from "effect"
 * import { Task } from "effect-tasks"
 *
 * class ResizeFailed extends Schema.TaggedError<ResizeFailed>()("ResizeFailed", { reason: Schema.String }) {}
 *
 * export const ResizeImage = Task.make("resize-image", {
 *   payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
 *   success: Schema.Struct({ path: Schema.String }),
 *   failure: ResizeFailed,
 *   retry: Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(2))),
 *   timeout: "30 seconds"
 * })
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  const Name extends string,
  Payload extends AnySchema = typeof Schema.Void,
  Success extends AnySchema = typeof Schema.Void,
  Failure extends AnySchema = typeof Schema.Never
>(
  name: Name,
  options: {
    readonly payload?: Payload | undefined
    readonly success?: Success | undefined
    readonly failure?: Failure | undefined
    readonly retry?: Schedule.Schedule<unknown, Schema.Schema.Type<Failure> | TaskTimeout> | undefined
    readonly retryWhile?: ((error: Schema.Schema.Type<Failure> | TaskTimeout) => boolean) | undefined
    readonly timeout?: Duration.DurationInput | undefined
  } = {}
): Definition<Name, Payload, Success, Failure> => {
  if (typeof name !== "string" || name.length === 0 || name.length > 200) {
    throw new TypeError(`Task.make: a task name is a non-empty string of at most 200 characters, got ${String(name)}`)
  }
  const nameIssue = textIssue(name)
  if (nameIssue !== undefined) throw new TypeError(`Task.make: the task name ${JSON.stringify(name)} ${nameIssue}`)
  const timeout = options.timeout === undefined ? undefined : Duration.decode(options.timeout)
  if (timeout !== undefined && !(Duration.toMillis(timeout) > 0)) {
    throw new TypeError(`Task.make("${name}"): timeout must be a positive duration`)
  }
  const definition: Definition<Name, Payload, Success, Failure> = {
    [TypeId]: TypeId,
    name,
    payloadSchema: (options.payload ?? Schema.Void) as Payload,
    successSchema: (options.success ?? Schema.Void) as Success,
    failureSchema: (options.failure ?? Schema.Never) as Failure,
    retry: options.retry ?? defaultSchedule,
    retryWhile: options.retryWhile,
    timeout,
    toLayer: (handler) =>
      Layer.effectDiscard(
        Effect.gen(function*() {
          const engine = yield* Engine
          const context = yield* Effect.context<never>()
          yield* engine.register({
            definition: definition as unknown as Any,
            run: handler as unknown as Handler["run"],
            context
          })
        })
      ),
    pipe() {
      return pipeArguments(this, arguments)
    }
  }
  return definition
}
