/**
 * The public `TaskStore` module: the port and its adapters, together.
 *
 * @since 0.1.0
 */
export * from "../services/TaskStore.js"
export { layerMemory, layerMemoryWith, make as makeMemory, type MemoryTaskStoreOptions } from "./MemoryTaskStore.js"
export {
  layerPostgres,
  layerPostgresConfig,
  make as makePostgres,
  type PgTaskStoreOptions
} from "./PgTaskStore.js"
export { type SqlTaskStoreOptions } from "./SqlTaskStore.js"
export { layerSupabase, type SupabaseRpcClient, type SupabaseTaskStoreOptions } from "./SupabaseTaskStore.js"
