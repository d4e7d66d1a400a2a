/**
 * The import directions of `src/` (the run-time cycle check is madge's, in `.ci/run`): the engine
 * and the adapters meet only at the ports.
 *
 *   engine/ -> services/ <- layers/, generated/
 *   http/, edge/ and the public modules (src/*.ts) on top, importing any of them
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "src")

/** Where each folder may import from (besides itself and packages). */
const allowed: Record<string, ReadonlyArray<string>> = {
  services: [],
  engine: ["services"],
  generated: [],
  layers: ["services", "generated"],
  edge: ["services", "layers", "engine", "(public)"],
  http: ["services", "layers", "engine", "edge", "(public)"]
}

const folderOf = (file: string): string => {
  const relative = path.relative(src, file)
  return relative.includes(path.sep) ? relative.split(path.sep)[0]! : "(public)"
}

const importsOf = (file: string): ReadonlyArray<string> =>
  Array.from(fs.readFileSync(file, "utf8").matchAll(/^(?:import|export)\s[^"']*?from\s+["'](\.[^"']+)["']/gm), (m) =>
    path.resolve(path.dirname(file), m[1]!))

describe("architecture", () => {
  it("imports go one way: engine -> services <- layers; http, edge and the public modules on top", () => {
    const files = fs.readdirSync(src, { recursive: true }).map(String).filter((f) => f.endsWith(".ts"))
    const wrong: Array<string> = []
    for (const name of files) {
      const file = path.join(src, name)
      const from = folderOf(file)
      const may = allowed[from]
      if (may === undefined) continue // the public modules import anything
      for (const target of importsOf(file)) {
        const to = folderOf(target)
        if (to !== from && !may.includes(to)) wrong.push(`${name} imports ${path.relative(src, target)}`)
      }
    }
    assert.deepStrictEqual(wrong, [])
    assert.isAbove(files.length, 40)
  })

  it("every field of the engine's state has one writer: its owner module", () => {
    const owners: Record<string, ReadonlyArray<string>> = {
      "engine/state/WorkerPool.ts": ["parked", "generation", "claiming", "restAfterClaim"],
      "engine/state/Timer.ts": ["timer", "rearmed", "dueWhileBusy"],
      "engine/state/Outbox.ts": ["behind", "outbox", "settlers", "writing"],
      "engine/state/Waiters.ts": ["waiters", "settled", "room", "roomGeneration"],
      "engine/state/Handlers.ts": ["handlers", "definitions", "names", "serving"],
      "engine/EngineState.ts": ["running", "closing", "busy"],
      "engine/StoreRetry.ts": ["answers", "answered"]
    }
    const ownerOf = new Map<string, string>()
    for (const [file, fields] of Object.entries(owners)) for (const field of fields) ownerOf.set(field, file)
    const fields = Array.from(ownerOf.keys()).join("|")
    const write = new RegExp(
      `\\b(?:state|answers)\\.(${fields})\\b(?:\\s*(?:[-+*/]?=(?!=)|\\+\\+|--)|\\.(?:push|pop|shift|unshift|splice|set|delete|clear|add)\\(|\\s*\\)?,\\s*Exit\\.)`,
      "g"
    )
    const wrong: Array<string> = []
    const engine = path.join(src, "engine")
    for (const name of fs.readdirSync(engine, { recursive: true }).map(String).filter((f) => f.endsWith(".ts"))) {
      const file = path.join("engine", name)
      const text = fs.readFileSync(path.join(src, file), "utf8")
      for (const match of text.matchAll(write)) {
        const owner = ownerOf.get(match[1]!)
        if (owner !== file) wrong.push(`${file} writes state.${match[1]} (owned by ${owner})`)
      }
    }
    assert.deepStrictEqual(wrong, [])
  })

  it("the package exports the public modules only: internals cannot be imported by path", () => {
    const probe = `for (const s of ${JSON.stringify(publicPaths.concat(internalPaths))}) {
      try { import.meta.resolve(s); console.log(s, "ok") } catch (e) { console.log(s, e.code) } }`
    const out = spawnSync(process.execPath, ["--input-type=module", "-e", probe], { cwd: path.join(src, ".."), encoding: "utf8" })
    const answers = Object.fromEntries(out.stdout.trim().split("\n").map((line) => line.split(" ") as [string, string]))
    for (const p of publicPaths) assert.strictEqual(answers[p], "ok", p)
    for (const p of internalPaths) assert.strictEqual(answers[p], "ERR_PACKAGE_PATH_NOT_EXPORTED", p)
  })
})

/** What users import: `src/index.ts`, the HTTP adapters and the embedded PostgreSQL (README). */
const publicPaths = ["effect-tasks", "effect-tasks/http/NodeServer", "effect-tasks/http/WebHandler", "effect-tasks/layers/EmbeddedPostgres"]
/** Internals: reachable only through the public modules. */
const internalPaths = [
  "effect-tasks/engine/TaskEngine",
  "effect-tasks/engine/state/WorkerPool",
  "effect-tasks/services/TaskStore",
  "effect-tasks/layers/MemoryTaskStore",
  "effect-tasks/generated/PgMigrationsSql"
]
