/**
 * A stand-in for PostgREST, for tests: PostgREST cannot run on these machines, so this `fetch`
 * (given to supabase-js as `createClient(url, key, { global: { fetch } })`) answers each
 * `POST /rest/v1/rpc/<function>` itself, by calling the same SQL function on the real database
 * the way PostgREST does: the JSON body's keys are the named arguments, typed after the
 * function's declaration in `pg_proc` (`json_to_record`), the schema is the `Content-Profile`
 * header, and the answer is a JSON array of rows for a set-returning function, the value itself
 * for a scalar one, or a PostgREST-shaped error (`{ code, message, details, hint }`).
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Cause, Effect, Exit, Runtime } from "effect"

interface Proc {
  readonly retset: boolean
  readonly names: ReadonlyArray<string> | null
  readonly modes: ReadonlyArray<string> | null
  readonly types: ReadonlyArray<string>
}

const json = (status: number, body: unknown): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } })

const quote = (ident: string): string => `"${ident.replaceAll("\"", "\"\"")}"`

/** The error PostgREST would send for a failed SQL call, from the driver's error. */
const sqlError = (cause: Cause.Cause<unknown>): Response => {
  const failure = Cause.squash(cause) as { readonly cause?: { readonly code?: string; readonly message?: string } }
  const pg = failure.cause
  return json(400, {
    code: pg?.code ?? "XX000",
    message: pg?.message ?? Cause.pretty(cause),
    details: null,
    hint: null
  })
}

/** Every request this fetch received, as `<schema>.<function>`: what the tests may check. */
export interface RpcLog {
  readonly calls: Array<string>
}

/**
 * A `fetch` that serves supabase-js's rpc calls from the `PgClient` in context.
 */
export const makeFetch = (log: RpcLog = { calls: [] }): Effect.Effect<typeof fetch, never, PgClient.PgClient> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<PgClient.PgClient>()
    const run = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
      Runtime.runPromiseExit(runtime)(Effect.flatMap(PgClient.PgClient, f))

    const serve = async (request: Request): Promise<Response> => {
      const url = new URL(request.url)
      const match = /^\/rest\/v1\/rpc\/([a-z_][a-z0-9_]*)$/.exec(url.pathname)
      if (request.method !== "POST" || match === null) {
        return json(404, { code: "PGRST125", message: `not served here: ${request.method} ${url.pathname}` })
      }
      const fn = match[1]!
      const schema = request.headers.get("content-profile") ?? "public"
      const text = await request.text()
      const args = (text === "" ? {} : JSON.parse(text)) as Record<string, unknown>
      log.calls.push(`${schema}.${fn}`)

      const found = await run((sql) =>
        sql.unsafe<Proc>(
          `SELECT p.proretset AS retset, p.proargnames AS names, p.proargmodes::text[] AS modes,
             array(SELECT format_type(t, NULL) FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) AS t) AS types
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = $1 AND p.proname = $2`,
          [schema, fn]
        )
      )
      if (Exit.isFailure(found)) return sqlError(found.cause)
      const proc = found.value[0]
      if (proc === undefined || found.value.length > 1) {
        return json(404, {
          code: "PGRST202",
          message: `Could not find the function ${schema}.${fn} in the schema cache`,
          details: null,
          hint: null
        })
      }
      // the input parameters, with their declared types, in order
      const params = proc.types.flatMap((type, i) => {
        const mode = proc.modes?.[i] ?? "i"
        const name = proc.names?.[i]
        return (mode === "i" || mode === "b" || mode === "v") && name !== undefined ? [[name, type] as const] : []
      })
      const known = new Map(params)
      const unknown = Object.keys(args).filter((key) => !known.has(key))
      if (unknown.length > 0) {
        return json(404, {
          code: "PGRST202",
          message: `Could not find the function ${schema}.${fn}(${Object.keys(args).join(", ")}) in the schema cache`,
          details: null,
          hint: null
        })
      }
      const given = params.filter(([name]) => name in args)
      const callee = `${quote(schema)}.${quote(fn)}(${given.map(([name]) => `${quote(name)} => a.${quote(name)}`).join(", ")})`
      const from = given.length === 0
        ? "(SELECT 1) AS a"
        : `json_to_record($1::json) AS a(${given.map(([name, type]) => `${quote(name)} ${type}`).join(", ")})`
      const query = proc.retset
        ? `SELECT coalesce(json_agg(r), '[]')::text AS body FROM ${from}, LATERAL ${callee} AS r`
        : `SELECT to_json(${callee})::text AS body FROM ${from}`
      const result = await run((sql) =>
        sql.unsafe<{ readonly body: string | null }>(query, given.length === 0 ? [] : [JSON.stringify(args)])
      )
      if (Exit.isFailure(result)) return sqlError(result.cause)
      return new Response(result.value[0]?.body ?? "null", {
        status: 200,
        headers: { "content-type": "application/json; charset=utf-8" }
      })
    }

    return (input: RequestInfo | URL, init?: RequestInit) => serve(new Request(input, init))
  })
