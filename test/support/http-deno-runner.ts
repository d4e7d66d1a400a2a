/**
 * Runs the Supabase example under real Deno as the Edge Runtime would, for `test/DenoEdge.test.ts`:
 * a stand-in for Supabase's global `EdgeRuntime.waitUntil` that logs what it is given, `Deno.serve`
 * bound to a free port on 127.0.0.1, and SIGUSR2 turned into the runtime's `beforeunload` event.
 */
type Handler = (request: Request) => Response | Promise<Response>

// runs under Deno, whose types this Node project does not load: the part of its global used here
declare const Deno: {
  serve: (
    options: { hostname: string; port: number; onListen: (address: { port: number }) => void },
    handler: Handler
  ) => unknown
  addSignalListener: (signal: "SIGUSR2", listener: () => void) => void
}

Object.assign(globalThis, {
  EdgeRuntime: {
    waitUntil(promise: Promise<unknown>) {
      console.log("[shim] EdgeRuntime.waitUntil registered")
      promise.then(() => console.log("[shim] EdgeRuntime.waitUntil settled"))
    }
  }
})

// the example calls Deno.serve(handler); it gets a server on a free port of 127.0.0.1
const serve = Deno.serve.bind(Deno)
Object.assign(Deno, {
  serve: (handler: Handler) =>
    serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => console.log(`[shim] listening on ${port}`)
    }, handler)
})

Deno.addSignalListener("SIGUSR2", () => {
  console.log("[shim] dispatching beforeunload")
  globalThis.dispatchEvent(new CustomEvent("beforeunload", { detail: { reason: "WallClockTime" } }))
})

// a Deno module (checked by Deno, not by the project's tsc), hence the path in a variable
const example = "../../examples/supabase/functions/process-data/index.ts"
await import(example)
