/**
 * The keep-alive port: serverless runtimes (Supabase Edge Functions, Cloudflare Workers, Vercel)
 * may freeze or end an isolate once the response is sent, unless background work is registered
 * with them. `WaitUntil` runs such work detached from the request and tells the runtime about it.
 *
 * Failure decision: registering never fails; a background effect that fails or dies is logged by
 * the adapter, never dropped silently.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Context } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface WaitUntil {
  /**
   * Runs `effect` in the background, detached from the caller's fiber and scope, and keeps the
   * runtime alive until it ends (Supabase `EdgeRuntime.waitUntil`, `ctx.waitUntil`, or nothing on
   * a long-lived process). Returns at once.
   */
  readonly waitUntil: (effect: Effect.Effect<unknown, unknown>) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const WaitUntil: Context.Tag<WaitUntil, WaitUntil> = Context.GenericTag<WaitUntil>("effect-tasks/WaitUntil")
