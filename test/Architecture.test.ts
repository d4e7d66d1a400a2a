/**
 * The import directions of `src/` (the run-time cycle check is madge's, in `.ci/run`): the engine
 * and the adapters meet only at the ports.
 *
 *   engine/ -> services/ <- layers/, generated/
 *   http/, edge/ and the public modules (src/*.ts) on top, importing any of them
 */
import { assert, describe, it } from "@effect/vitest"
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
})
