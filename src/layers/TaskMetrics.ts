/**
 * The public `TaskMetrics` module: the port and its adapters, together.
 *
 * @since 0.1.0
 */
export * from "../services/TaskMetrics.js"
export { layerMemory, make as makeMemory } from "./MemoryTaskMetrics.js"
export { layerSql, make as makeSql, type SqlTaskMetricsOptions } from "./SqlTaskMetrics.js"
