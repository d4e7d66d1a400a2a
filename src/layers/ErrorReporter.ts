/**
 * The public `ErrorReporter` module: the port and its adapters, together.
 *
 * @since 0.1.0
 */
export * from "../services/ErrorReporter.js"
export { layerMemory, make as makeMemory } from "./MemoryErrorReporter.js"
export { layerSql, make as makeSql, type SqlErrorReporterOptions } from "./SqlErrorReporter.js"
