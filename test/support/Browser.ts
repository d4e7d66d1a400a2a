/**
 * The headless Chromium of the browser tests: Debian's `/usr/bin/chromium` where it is installed,
 * otherwise the one the npm package `@sparticuz/chromium` ships inside itself (unpacked to the
 * temporary directory on first use), so that `npm test` needs no apt and no browser download.
 */
import { existsSync } from "node:fs"
import { Effect } from "effect"
import type { Browser } from "playwright-core"
import { chromium } from "playwright-core"

const system = "/usr/bin/chromium"
const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

/** Where the browser is and the arguments it wants. */
export const executable: Effect.Effect<{ readonly path: string; readonly args: ReadonlyArray<string> }> = Effect.promise(
  async () => {
    if (existsSync(system)) return { path: system, args: flags }
    const shipped = (await import("@sparticuz/chromium")).default
    // its own flags include --single-process and --headless='shell'; ours come last and win
    return { path: await shipped.executablePath(), args: [...shipped.args, ...flags] }
  }
)

/** A launched browser, closed with the scope. */
export const launch = Effect.acquireRelease(
  Effect.flatMap(executable, ({ args, path }) =>
    Effect.promise(() => chromium.launch({ executablePath: path, args: [...args] }))),
  (browser: Browser) => Effect.promise(() => browser.close())
)
