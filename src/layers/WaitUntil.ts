/**
 * The public `WaitUntil` module: the port and its adapters (Supabase, `ctx.waitUntil`, Node).
 *
 * @since 0.1.0
 */
export * from "../services/WaitUntil.js"
export {
  contextOf,
  fromContext,
  layerContext,
  layerNode,
  layerSupabase,
  make,
  type WaitUntilContext
} from "./EdgeWaitUntil.js"
