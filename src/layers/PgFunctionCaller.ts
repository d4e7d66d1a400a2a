/**
 * The SQL functions of the migrations called through a `PgClient`: the statement text of each
 * (by name, with named and typed arguments), the encoding of its parameters, and the store's
 * error for a failed call.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { StoreUnavailable } from "../services/TaskError.js"
import type { Execute } from "./PgExecute.js"
import { pooledExecute } from "./PgExecute.js"
import * as PgMigrations from "./PgMigrations.js"
import type { Args, FunctionCaller, Name, ParamType, Results } from "./TaskFunctions.js"
import { signatures } from "./TaskFunctions.js"

/**
 * The store's error for a failed call, in words a person can act on: the database's own message
 * (at most 200 characters: some echo the whole bad value) and its SQLSTATE, never the statement.
 *
 * @internal
 */
export const unavailable = (operation: string, error: SqlError): StoreUnavailable => {
  const cause = error.cause
  if (cause instanceof Error) {
    const code = (cause as { readonly code?: unknown }).code
    const message = cause.message.length > 200 ? `${cause.message.slice(0, 200)}…` : cause.message
    return typeof code === "string"
      ? new StoreUnavailable({ operation, reason: `${message} (SQLSTATE ${code})`, code })
      : new StoreUnavailable({ operation, reason: message })
  }
  return new StoreUnavailable({ operation, reason: error.message })
}

/**
 * A PostgreSQL array literal of strings, numbers and nulls, made by `JSON.stringify` (native, one
 * string) where the two syntaxes agree: quoted elements escaping only `"` and `\` the same way,
 * `null` unquoted. `pg`'s own encoder concatenated a string per element (the most allocation of a
 * settlement, 16 MB per 20,000). A JSON escape PostgreSQL reads otherwise (`\n`, `\u0001`) or a
 * value that is neither string, finite number nor null leaves the array to `pg`.
 */
const arrayLiteral = (values: ReadonlyArray<unknown>): unknown => {
  for (const value of values) {
    if (value !== null && typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) {
      return values
    }
  }
  const json = JSON.stringify(values)
  return /\\[^"\\]/.test(json) ? values : `{${json.slice(1, -1)}}`
}

const encodeParam = (type: ParamType, value: unknown): unknown =>
  value === null || value === undefined
    ? null
    : type === "jsonb"
    ? JSON.stringify(value)
    : type === "text[]" || type === "double precision[]"
    ? arrayLiteral(value as ReadonlyArray<unknown>)
    : value

/**
 * Calls the SQL functions through a `PgClient`, by name with named arguments:
 * `SELECT * FROM "<schema>".task_claim(p_owner => $1::text, ...)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCaller = (
  sql: PgClient.PgClient,
  schema: string,
  execute: Execute = pooledExecute(sql)
): FunctionCaller => {
  PgMigrations.validateSchema(schema)
  const texts = new Map<string, string>()
  for (const name of Object.keys(signatures) as Array<Name>) {
    const signature = signatures[name]
    const args = signature.params.map(([param, type], i) => `${param} => $${i + 1}::${type}`).join(", ")
    const call = `"${schema}".${name}(${args})`
    texts.set(name, signature.returns === "rows" ? `SELECT * FROM ${call}` : `SELECT ${call} AS value`)
  }
  const call = <F extends Name>(name: F, args: Args[F]): Effect.Effect<Results[F], StoreUnavailable> =>
    Effect.suspend(() => {
      const signature = signatures[name]
      let values: Array<unknown>
      try {
        values = signature.params.map(([param, type]) => encodeParam(type, (args as Record<string, unknown>)[param]))
      } catch (error) {
        // JSON.stringify refuses a value (a bigint, a cycle): the store cannot hold it
        return Effect.fail(
          new StoreUnavailable({ operation: name, reason: `argument is not JSON: ${String(error)}`, code: "22000" })
        )
      }
      return Effect.mapBoth(execute(texts.get(name)!, values), {
        onFailure: (error) => unavailable(name, error),
        onSuccess: (rows) => (signature.returns === "rows" ? rows : rows[0]?.value ?? null) as Results[F]
      })
    })
  return { call }
}

