/**
 * What the engine can run and submit: the registered handlers, the definitions known by name,
 * and the names it claims. The only writer of these fields.
 *
 * A definition is *declared* (submittable by name: `definitions` option) or *registered* (with a
 * handler: claimed and run here). `serving` is done at the first registration: until then the
 * engine runs nothing and does not listen for work.
 *
 * @since 0.2.0
 * @internal
 */
import { Deferred, Exit } from "effect"
import type * as Task from "../Task.js"

/** @internal */
export interface HandlersState<R> {
  readonly handlers: Map<string, R>
  /** Definitions known without a handler here (producers), by name. */
  readonly definitions: Map<string, Task.Any>
  /** The names this engine claims: those with a handler. */
  names: ReadonlyArray<string>
  /** Done once a handler is registered: until then the engine runs nothing and need not listen. */
  readonly serving: Deferred.Deferred<void>
}

/** @internal */
export const make = <R>(serving: Deferred.Deferred<void>): HandlersState<R> => ({
  handlers: new Map(),
  definitions: new Map(),
  names: [],
  serving
})

/** A definition this engine may submit by name. @internal */
export const declare = <R>(state: HandlersState<R>, definition: Task.Any): void => {
  state.definitions.set(definition.name, definition)
}

/** A handler registered for `definition`: its name is claimed from now on. @internal */
export const add = <R>(state: HandlersState<R>, definition: Task.Any, registered: R): void => {
  state.handlers.set(definition.name, registered)
  state.definitions.set(definition.name, definition)
  state.names = Array.from(state.handlers.keys())
  Deferred.unsafeDone(state.serving, Exit.void)
}
