/**
 * The `WaitUntil` adapters: Supabase's `EdgeRuntime.waitUntil`, a `ctx.waitUntil` as Cloudflare
 * Workers and Vercel Functions hand it out, and a no-op for long-lived processes (Node, Bun,
 * `deno serve` on a server). Each runs the background effect on a daemon fiber and registers a
 * promise that settles when it ends; a failure of that effect is logged, never swallowed.
 *
 * @since 0.1.0
 */
import { Cause, Context, Effect, Layer } from "effect"
import { WaitUntil } from "../services/WaitUntil.js"

/**
 * Something with a `waitUntil(promise)` method: a Cloudflare `ExecutionContext`, the module of
 * `@vercel/functions`, Supabase's `EdgeRuntime`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitUntilContext {
  readonly waitUntil: (promise: Promise<unknown>) => void
}

/**
 * A `WaitUntil` that registers each background effect with `register`, or with nothing when
 * `register` is `undefined`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (register: ((promise: Promise<unknown>) => void) | undefined): WaitUntil =>
  WaitUntil.of({
    waitUntil: (effect) =>
      Effect.suspend(() => {
        let settle: () => void = () => {}
        const settled = new Promise<void>((resolve) => {
          settle = resolve
        })
        const run = effect.pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("background work failed", cause)
          ),
          Effect.ensuring(Effect.sync(() => settle()))
        )
        const registered = register === undefined
          ? Effect.void
          : Effect.try(() => register(settled)).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("waitUntil refused the background work; it runs without keep-alive", error.error)
            )
          )
        return Effect.zipRight(Effect.forkDaemon(run), registered)
      })
  })

/**
 * Registers with a `ctx.waitUntil` (called as a method, as Cloudflare requires).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromContext = (ctx: WaitUntilContext): WaitUntil => make((promise) => ctx.waitUntil(promise))

/**
 * The context of one request for a runtime whose `ctx` is per request (Cloudflare Workers):
 * pass it as the second argument of the web handler.
 *
 * @example
 * import { WaitUntil } from "effect-tasks"
 * declare const handler: (request: Request, context?: import("effect").Context.Context<never>) => Promise<Response>
 *
 * export default {
 *   fetch: (request: Request, _env: unknown, ctx: WaitUntil.WaitUntilContext) =>
 *     handler(request, WaitUntil.contextOf(ctx))
 * }
 *
 * @since 0.1.0
 * @category constructors
 */
export const contextOf = (ctx: WaitUntilContext): Context.Context<never> =>
  Context.make(WaitUntil, fromContext(ctx)) as Context.Context<never>

/**
 * Registers with a `ctx.waitUntil` shared by every request (Vercel's `waitUntil` from
 * `@vercel/functions`, a Deno Deploy or test shim).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerContext = (ctx: WaitUntilContext): Layer.Layer<WaitUntil> => Layer.succeed(WaitUntil, fromContext(ctx))

interface SupabaseGlobal {
  readonly EdgeRuntime?: { readonly waitUntil?: (promise: Promise<unknown>) => void } | undefined
}

/**
 * Registers with Supabase's global `EdgeRuntime.waitUntil`. Where it is missing (plain Deno,
 * `supabase functions serve` of an old CLI) the layer logs a warning once and registers nothing:
 * the work still runs, but the runtime may end before it finishes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSupabase: Layer.Layer<WaitUntil> = Layer.effect(
  WaitUntil,
  Effect.gen(function*() {
    const edge = (globalThis as SupabaseGlobal).EdgeRuntime
    if (edge === undefined || typeof edge.waitUntil !== "function") {
      yield* Effect.logWarning(
        "EdgeRuntime.waitUntil is not available (not on Supabase Edge Runtime): background work runs without keep-alive"
      )
      return make(undefined)
    }
    return make((promise) => edge.waitUntil!(promise))
  })
)

/**
 * Registers nothing: a long-lived process (Node, Bun) stays up by itself. The work still runs on
 * a daemon fiber.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNode: Layer.Layer<WaitUntil> = Layer.succeed(WaitUntil, make(undefined))
