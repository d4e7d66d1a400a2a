/**
 * Worker child processes (`pgWorker.ts`) for `PgCrossProcess.test.ts`: spawned with
 * `node --import tsx`, SIGKILLed when the scope closes (and by `killAll`, for `afterEach`) if
 * they are still alive.
 */
import * as ChildProcess from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Scope } from "effect"
import { Effect } from "effect"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const script = path.join(root, "test/support/pgWorker.ts")

export interface WorkerOptions {
  readonly databaseUrl: string
  readonly schema: string
  readonly id: string
  readonly maxConcurrent?: number
  readonly leaseMs?: number
  readonly heartbeatMs?: number
  readonly pollMs?: number
  readonly shutdownMs?: number
  readonly prefetch?: number
}

export interface Worker {
  readonly id: string
  readonly child: ChildProcess.ChildProcess
  /** How it ended: exit code or signal. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** Its stdout and stderr so far, for failure messages. */
  readonly output: () => string
}

const alive = new Set<ChildProcess.ChildProcess>()

/** SIGKILLs every worker still running. */
export const killAll = (): void => {
  for (const child of alive) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  alive.clear()
}

const isRunning = (child: ChildProcess.ChildProcess) => child.exitCode === null && child.signalCode === null

/** Starts a worker and waits (up to 20 s) for its engine to run; killed when the scope closes. */
export const spawnWorker = (options: WorkerOptions): Effect.Effect<Worker, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", script], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          DATABASE_URL: options.databaseUrl,
          WORKER_SCHEMA: options.schema,
          WORKER_ID: options.id,
          WORKER_MAX_CONCURRENT: String(options.maxConcurrent ?? 4),
          WORKER_LEASE_MS: String(options.leaseMs ?? 2_000),
          WORKER_HEARTBEAT_MS: String(options.heartbeatMs ?? 500),
          WORKER_POLL_MS: String(options.pollMs ?? 200),
          WORKER_SHUTDOWN_MS: String(options.shutdownMs ?? 2_000),
          WORKER_PREFETCH: String(options.prefetch ?? 0),
          WORKER_LIFETIME_MS: "90000"
        }
      })
      alive.add(child)
      let output = ""
      const keep = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.length > 20_000) output = output.slice(-20_000)
      }
      child.stdout!.on("data", keep)
      child.stderr!.on("data", keep)
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on("exit", (code, signal) => {
          alive.delete(child)
          resolve({ code, signal })
        })
      })
      const worker: Worker = { id: options.id, child, exited, output: () => output }
      return worker
    }),
    (worker) =>
      Effect.sync(() => {
        if (isRunning(worker.child)) worker.child.kill("SIGKILL")
        alive.delete(worker.child)
      })
  ).pipe(
    Effect.tap((worker) =>
      Effect.async<void, Error>((resume) => {
        const check = () => {
          if (worker.output().includes("__READY__")) resume(Effect.void)
        }
        worker.child.stdout!.on("data", check)
        void worker.exited.then(({ code, signal }) =>
          resume(Effect.fail(new Error(`worker ${worker.id} exited (${code ?? signal}) before it was ready:\n${worker.output()}`)))
        )
        check()
        return Effect.sync(() => worker.child.stdout!.off("data", check))
      }).pipe(
        Effect.timeoutFail({
          duration: "20 seconds",
          onTimeout: () => new Error(`worker ${worker.id} not ready after 20 s:\n${worker.output()}`)
        })
      )
    )
  )

/** Waits for a worker to exit, up to `millis`. */
export const exitOf = (worker: Worker, millis: number) =>
  Effect.promise(() => worker.exited).pipe(
    Effect.timeoutFail({
      duration: millis,
      onTimeout: () => new Error(`worker ${worker.id} still running after ${millis} ms:\n${worker.output()}`)
    })
  )
