/**
 * effect-tasks: an actor-style, in-process background task engine built on Effect.
 *
 * @since 0.1.0
 */
export * as Task from "./engine/Task.js"
export * as TaskEngine from "./TaskEngine.js"
export * as Progress from "./engine/Progress.js"
export * as Retry from "./engine/Retry.js"
export * as Cleanup from "./engine/Cleanup.js"
export * as TaskStore from "./layers/TaskStore.js"
export * as ErrorReporter from "./layers/ErrorReporter.js"
export * as TaskMetrics from "./layers/TaskMetrics.js"
export * as TaskRecord from "./services/TaskRecord.js"
export * as TaskError from "./services/TaskError.js"
export * as WaitUntil from "./layers/WaitUntil.js"
export * as EdgeRuntime from "./edge/EdgeRuntime.js"
export * as TaskApi from "./http/TaskApi.js"
export * as TaskHttp from "./http/TaskHttp.js"
export * as WebHandler from "./http/WebHandler.js"
export * as HttpError from "./http/HttpError.js"
export * as Prometheus from "./http/Prometheus.js"
