/**
 * The engine across real processes on PostgreSQL: worker processes (`support/pgWorker.ts`, run
 * with `node --import tsx`) share one queue in a fresh schema; this process only submits (a
 * producer engine with `definitions` and no handler) and reads the tables. The handler records
 * each attempt's start and end in `runs`, so that runs are counted by the database, not by the
 * processes that may die.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Redacted, Schedule, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach } from "vitest"
import { TaskEngine } from "../src/index.js"
import * as EmbeddedPostgres from "../src/layers/EmbeddedPostgres.js"
import * as PgTaskStore from "../src/layers/PgTaskStore.js"
import { databaseUrl, freshSchema, PgClientLive } from "./support/Database.js"
import { exitOf, killAll, spawnWorker, type WorkerOptions } from "./support/pgProcess.js"
import { runsTable, Work } from "./support/pgTasks.js"

afterEach(() => killAll())

/** A schema with the store's tables and `runs`, and a producer engine (no handler) on it. */
const setup = (prefix: string, url: string = databaseUrl()) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const schema = yield* freshSchema(prefix)
    const producer = yield* Effect.map(
      Layer.build(TaskEngine.layer({ instanceId: "producer", definitions: [Work], cleanup: false }).pipe(
        Layer.provide(PgTaskStore.layerPostgres({ schema }))
      )),
      Context.get(TaskEngine.TaskEngine)
    )
    yield* sql.unsafe(runsTable(schema))
    const worker = (id: string, options: Partial<WorkerOptions> = {}) =>
      spawnWorker({ databaseUrl: url, schema, id, ...options })
    return { sql, schema, producer, worker }
  })

const submit = (producer: TaskEngine.TaskEngine, count: number, ms: number, batch = 500) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(count / batch) }, (_, b) => b),
    (b) =>
      producer.submitMany(
        Work,
        Array.from({ length: Math.min(batch, count - b * batch) }, (_, i) => ({ n: b * batch + i, ms }))
      ),
    { concurrency: 1 }
  ).pipe(Effect.map((batches) => batches.flat()))

/** Task counts by status. */
const statuses = (sql: PgClient.PgClient, schema: string) =>
  Effect.map(
    sql<{ status: string; count: string }>`SELECT status, count(*) AS count FROM ${sql(schema)}.task_status GROUP BY status`,
    (rows) => Object.fromEntries(rows.map((row) => [row.status, Number(row.count)])) as Record<string, number>
  )

/** Polls until `ok`, up to `seconds`. */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, ok: (a: A) => boolean, seconds = 20) =>
  effect.pipe(
    Effect.filterOrFail(ok, (a) => new Error(`not yet: ${JSON.stringify(a)}`)),
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeout(`${seconds} seconds`)
  )

/** Per task: attempts started and finished (from `runs`), over all tasks. */
const runCounts = (sql: PgClient.PgClient, schema: string) =>
  sql<{ task_id: string; starts: string; dones: string }>`
    SELECT t.id AS task_id,
      count(*) FILTER (WHERE r.phase = 'start') AS starts,
      count(*) FILTER (WHERE r.phase = 'done') AS dones
    FROM ${sql(schema)}.task_status t LEFT JOIN ${sql(schema)}.runs r ON r.task_id = t.id
    GROUP BY t.id`.pipe(
    Effect.map((rows) => rows.map((row) => ({ id: row.task_id, starts: Number(row.starts), dones: Number(row.dones) })))
  )

layer(PgClientLive, { excludeTestServices: true })("TaskEngine across processes on PostgreSQL", (it) => {
  it.scoped("3 worker processes run 2,000 tasks: each completed, each run exactly once", () =>
    Effect.gen(function*() {
      const { producer, schema, sql, worker } = yield* setup("xproc_once")
      yield* Effect.forEach(["w1", "w2", "w3"], (id) => worker(id, { maxConcurrent: 8, prefetch: 16 }), {
        concurrency: "unbounded"
      })
      const ids = yield* submit(producer, 2_000, 2)
      assert.strictEqual(new Set(ids).size, 2_000)
      yield* eventually(statuses(sql, schema), (counts) => counts.completed === 2_000, 25)
      const counts = yield* runCounts(sql, schema)
      assert.strictEqual(counts.length, 2_000)
      assert.deepStrictEqual(counts.filter((c) => c.starts !== 1 || c.dones !== 1), [])
      const attempts = yield* sql<{ attempt: number }>`SELECT DISTINCT attempt FROM ${sql(schema)}.task_status`
      assert.deepStrictEqual(attempts.map((row) => row.attempt), [1])
      const byWorker = yield* sql<{ worker: string; count: string }>`
        SELECT worker, count(*) AS count FROM ${sql(schema)}.runs WHERE phase = 'done' GROUP BY worker ORDER BY worker`
      // every process took a share
      assert.deepStrictEqual(byWorker.map((row) => row.worker), ["w1", "w2", "w3"])
    }))

  it.scoped("a worker SIGKILLed mid-run: the others take over its tasks once their leases expire, none lost", () =>
    Effect.gen(function*() {
      const { producer, schema, sql, worker } = yield* setup("xproc_kill")
      const killedMaxConcurrent = 4
      const [victim] = yield* Effect.forEach(
        ["w1", "w2", "w3"],
        (id) => worker(id, { maxConcurrent: killedMaxConcurrent, leaseMs: 2_000, heartbeatMs: 500 }),
        { concurrency: "unbounded" }
      )
      yield* submit(producer, 600, 30)
      // mid-run: the victim has finished some and is running others (its workers finish and claim
      // in step, so "has finished 40" alone may catch all four between two tasks)
      yield* eventually(
        sql<{ done: string; open: string }>`
          SELECT count(*) FILTER (WHERE s.phase = 'done') AS done,
                 count(*) FILTER (WHERE s.phase = 'start' AND NOT EXISTS (
                   SELECT 1 FROM ${sql(schema)}.runs d WHERE d.task_id = s.task_id AND d.worker = 'w1' AND d.phase = 'done'
                 )) AS open
          FROM ${sql(schema)}.runs s WHERE s.worker = 'w1'`,
        (rows) => Number(rows[0]!.done) >= 40 && Number(rows[0]!.open) >= 1
      )
      victim!.child.kill("SIGKILL")
      const exit = yield* exitOf(victim!, 5_000)
      assert.strictEqual(exit.signal, "SIGKILL")
      // what it held when it died: tasks running, and tasks finished whose settlement (written
      // behind) had not landed; their leases run out, and only they may run twice
      const [held] = yield* sql<{ count: string }>`
        SELECT count(*) AS count FROM ${sql(schema)}.task_status WHERE locked_by = 'w1' AND status = 'processing'`
      const heldAtDeath = Number(held!.count)
      assert.isAtLeast(heldAtDeath, 1)
      const counts = yield* eventually(statuses(sql, schema), (counts) => counts.completed === 600, 25)
      assert.deepStrictEqual(counts, { completed: 600 })
      const runs = yield* runCounts(sql, schema)
      assert.strictEqual(runs.length, 600)
      // nothing lost: every task finished an attempt
      assert.deepStrictEqual(runs.filter((c) => c.dones < 1), [])
      // duplicate runs: at most what the killed worker held (its running attempts, and those
      // finished but not yet settled: the engine's tests check how many those may be)
      const duplicates = runs.reduce((sum, c) => sum + c.starts - 1, 0)
      assert.isAtMost(duplicates, heldAtDeath)
      // the tasks it was running when it died were finished by the others
      const orphaned = yield* sql<{ task_id: string; others: string }>`
        SELECT s.task_id, (SELECT count(*) FROM ${sql(schema)}.runs o
          WHERE o.task_id = s.task_id AND o.worker <> 'w1' AND o.phase = 'done') AS others
        FROM ${sql(schema)}.runs s
        WHERE s.worker = 'w1' AND s.phase = 'start' AND NOT EXISTS (
          SELECT 1 FROM ${sql(schema)}.runs d WHERE d.task_id = s.task_id AND d.worker = 'w1' AND d.phase = 'done')`
      assert.isAtLeast(orphaned.length, 1)
      assert.isAtMost(orphaned.length, killedMaxConcurrent)
      assert.isTrue(orphaned.every((row) => Number(row.others) === 1), JSON.stringify(orphaned))
      // no survivor ran a task twice
      const survivorsTwice = yield* sql<{ task_id: string }>`
        SELECT task_id FROM ${sql(schema)}.runs WHERE worker <> 'w1' AND phase = 'start'
        GROUP BY task_id HAVING count(*) > 1`
      assert.deepStrictEqual(survivorsTwice, [])
    }))

  it.scoped("SIGTERM: running tasks finish or go back to pending within the shutdown timeout; another worker finishes them", () =>
    Effect.gen(function*() {
      const { producer, schema, sql, worker } = yield* setup("xproc_term")
      const shutdownMs = 1_500
      // a lease far longer than the test: only a release to pending lets another worker take its tasks
      const a = yield* worker("a", { maxConcurrent: 4, shutdownMs, leaseMs: 60_000, heartbeatMs: 5_000 })
      const long = yield* producer.submitMany(Work, [0, 1, 2].map((n) => ({ n, ms: 6_000 })))
      yield* eventually(
        sql<{ count: string }>`SELECT count(*) AS count FROM ${sql(schema)}.runs WHERE worker = 'a' AND phase = 'start'`,
        (rows) => Number(rows[0]!.count) === 3
      )
      // one slot left for these: one of them runs when SIGTERM comes
      const short = yield* producer.submitMany(Work, Array.from({ length: 30 }, (_, i) => ({ n: 100 + i, ms: 400 })))
      const b = yield* worker("b", { maxConcurrent: 8, shutdownMs, leaseMs: 2_000, heartbeatMs: 500 })
      yield* eventually(
        sql<{ count: string }>`SELECT count(*) AS count FROM ${sql(schema)}.runs WHERE worker = 'a' AND phase = 'start'`,
        (rows) => Number(rows[0]!.count) >= 5
      )
      const termAt = Date.now()
      a.child.kill("SIGTERM")
      const exit = yield* exitOf(a, shutdownMs + 5_000)
      const stoppedIn = Date.now() - termAt
      assert.strictEqual(exit.signal, null, a.output())
      assert.strictEqual(exit.code, 0, a.output())
      assert.isBelow(stoppedIn, shutdownMs + 3_000)
      const counts = yield* eventually(statuses(sql, schema), (counts) => counts.completed === 33, 20)
      assert.deepStrictEqual(counts, { completed: 33 })
      const rows = yield* sql<{ task_id: string; worker: string; phase: string }>`
        SELECT task_id, worker, phase FROM ${sql(schema)}.runs ORDER BY at`
      const of = (id: string, worker: string, phase: string) =>
        rows.filter((row) => row.task_id === id && row.worker === worker && row.phase === phase).length
      // the long ones were interrupted on a, handed back, and run (once) by b
      for (const id of long) {
        assert.deepStrictEqual([of(id, "a", "start"), of(id, "a", "done"), of(id, "b", "start"), of(id, "b", "done")], [1, 0, 1, 1])
      }
      // every short one a started, a finished (within the timeout); every short one ran once
      const shortStartedOnA = short.filter((id) => of(id, "a", "start") > 0)
      assert.isAtLeast(shortStartedOnA.length, 2)
      for (const id of short) {
        assert.strictEqual(of(id, "a", "start") + of(id, "b", "start"), 1)
        assert.strictEqual(of(id, "a", "start"), of(id, "a", "done"))
        assert.strictEqual(of(id, "a", "done") + of(id, "b", "done"), 1)
      }
      const attempts = yield* sql<{ id: string; attempt: number }>`
        SELECT id, attempt FROM ${sql(schema)}.task_status WHERE id IN ${sql.in(long)}`
      assert.isTrue(attempts.every((row) => row.attempt === 2), JSON.stringify(attempts))
      b.child.kill("SIGTERM")
      assert.strictEqual((yield* exitOf(b, shutdownMs + 5_000)).code, 0)
    }))

  it.scoped("PostgreSQL restarted mid-run (an embedded server of this test's own): every task still completes", () =>
    Effect.gen(function*() {
      // a cluster in a directory of our own, so that a second server can start on it
      const base = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-tasks-restart-"))
          fs.chmodSync(dir, 0o755)
          return dir
        }),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      // closed after everything that uses the servers (finalizers run in reverse order)
      yield* Effect.addFinalizer(() => Effect.andThen(Scope.close(first, Exit.void), Scope.close(second, Exit.void)))
      const options = {
        dataDir: path.join(base, "data"),
        password: "restart-test",
        settings: { fsync: "off", synchronous_commit: "off" }
      }
      const server = yield* Scope.extend(EmbeddedPostgres.start(options), first)
      const url = Redacted.value(server.url)
      const client = yield* Layer.build(PgClient.layer({ url: server.url, maxConnections: 4 }))
      const { producer, schema, sql, worker } = yield* Effect.provide(setup("xproc_restart", url), client)
      yield* Effect.forEach(["r1", "r2"], (id) => worker(id, { maxConcurrent: 4 }), { concurrency: "unbounded" })
      const total = 300
      yield* submit(producer, total, 20)
      yield* eventually(
        sql<{ count: string }>`SELECT count(*) AS count FROM ${sql(schema)}.runs WHERE phase = 'done'`,
        (rows) => Number(rows[0]!.count) >= 50
      )
      const before = (yield* statuses(sql, schema)).completed ?? 0
      const restartAt = new Date()
      yield* Scope.close(first, Exit.void)
      yield* Scope.extend(EmbeddedPostgres.start({ ...options, port: server.port }), second)
      const counts = yield* eventually(statuses(sql, schema), (counts) => counts.completed === total, 20)
      assert.isBelow(before, total)
      assert.deepStrictEqual(counts, { completed: total })
      const runs = yield* runCounts(sql, schema)
      assert.deepStrictEqual(runs.filter((c) => c.dones < 1), [])
      // it really was another server
      const [started] = yield* sql<{ at: Date }>`SELECT pg_postmaster_start_time() AS at`
      assert.isAtLeast(new Date(started!.at).getTime(), restartAt.getTime())
    }).pipe(Effect.scoped))
})
