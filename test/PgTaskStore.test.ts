/**
 * The Postgres store: the TaskStore contract (in virtual time: `time: "clock"`), then what only a
 * real database shows: migrations, concurrent claimers and inserters, LISTEN wake-ups, throttled
 * progress, errors. Runs against `DATABASE_URL`, or the embedded PostgreSQL of the global setup;
 * every test works in a schema of its own.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import Pg from "pg"
import { assert, describe, it, layer } from "@effect/vitest"
import {
  Chunk,
  ConfigProvider,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Redacted,
  Schedule,
  Scope,
  Stream
} from "effect"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { migrationFilePattern, readMigrationFiles, staleFiles } from "../scripts/generate.js"
import * as PgMigrations from "../src/layers/PgMigrations.js"
import * as PgTaskStore from "../src/layers/PgTaskStore.js"
import * as SqlTaskStore from "../src/layers/SqlTaskStore.js"
import type { FunctionCaller } from "../src/layers/TaskFunctions.js"
import type { NewTask, TaskId } from "../src/services/TaskRecord.js"
import { TaskStore } from "../src/services/TaskStore.js"
import { databaseUrl, freshSchema, PgClientLive } from "./support/Database.js"
import { taskStoreContract } from "./TaskStoreContract.js"

const id = (value: string): TaskId => value as TaskId

const task = (taskId: string, options: Partial<NewTask> = {}): NewTask => ({
  id: id(taskId),
  name: "n",
  payload: { taskId },
  priority: 0,
  runAt: new Date(),
  idempotencyKey: null,
  ...options
})

/** A store in a fresh schema, built in the current scope. */
const storeIn = (schema: string, options: PgTaskStore.PgTaskStoreOptions = {}) =>
  Effect.map(Layer.build(PgTaskStore.layerPostgres({ schema, ...options })), Context.get(TaskStore))

describe("PgMigrations", () => {
  it("embeds exactly the migrations/NNNN_*.sql files, and not current-schema.sql", () => {
    assert.deepStrictEqual({ ...PgMigrations.sql }, readMigrationFiles())
    assert.isTrue(fs.existsSync(new URL("../migrations/current-schema.sql", import.meta.url)))
    assert.isFalse(migrationFilePattern.test("current-schema.sql"))
    assert.notInclude(Object.keys(PgMigrations.sql), "current-schema")
  })

  it("the generated files are current (npm run generate makes them)", () => {
    assert.deepStrictEqual(staleFiles(), [])
  })

  it("refuses a schema name that is not a plain lower-case identifier", () => {
    assert.throws(() => PgTaskStore.layerPostgres({ schema: "Bad-Name" }), /schema must match/)
    assert.throws(() => PgTaskStore.layerPostgres({ schema: "x".repeat(49) }), /schema must match/)
  })
})

/** What a schema holds, as text in which the schema's name reads `<schema>`. */
const catalogOf = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const rows = yield* sql.unsafe<{ kind: string; name: string; def: string }>(
      `SELECT 'function' AS kind, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
              pg_get_functiondef(p.oid) AS def
       FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
       UNION ALL
       SELECT 'relation', c.relname, c.relkind::text || ' ' || coalesce(array_to_string(c.reloptions, ','), '') || ' ' ||
              coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
                                 CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END ||
                                 coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
                        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
       FROM pg_class c WHERE c.relnamespace = $1::regnamespace
       UNION ALL
       SELECT 'constraint', k.conrelid::regclass::text || ' ' || k.conname, pg_get_constraintdef(k.oid)
       FROM pg_constraint k WHERE k.connamespace = $1::regnamespace
       UNION ALL
       SELECT 'index', c.relname, pg_get_indexdef(c.oid)
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = $1::regnamespace
       UNION ALL
       SELECT 'trigger', t.tgname, pg_get_triggerdef(t.oid)
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
       UNION ALL
       SELECT 'type', t.typname, t.typtype::text FROM pg_type t WHERE t.typnamespace = $1::regnamespace
       ORDER BY 1, 2`,
      [schema]
    )
    return rows
      .filter((row) => !`${row.name} ${row.def}`.includes(PgMigrations.migrationsTable))
      .map((row) => `${row.kind} ${row.name}: ${row.def}`.replaceAll(schema, "<schema>"))
  })

layer(PgClientLive)("PgMigrations on PostgreSQL", (it) => {
  it.scoped("current-schema.sql, applied to an empty schema, makes what the migrations make", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const migrated = yield* freshSchema("migrated")
      yield* PgMigrations.run(migrated)
      const current = yield* freshSchema("current")
      const text = fs.readFileSync(fileURLToPath(new URL("../migrations/current-schema.sql", import.meta.url)), "utf8")
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`CREATE SCHEMA "${current}"`)
        yield* sql.unsafe(`SET LOCAL search_path TO "${current}"`)
        // its functions are in name order, not in the order they call each other (as pg_dump does)
        yield* sql.unsafe("SET LOCAL check_function_bodies = off")
        yield* sql.unsafe(text)
      }))
      const expected = yield* catalogOf(migrated)
      assert.isAbove(expected.length, 40)
      assert.deepStrictEqual(yield* catalogOf(current), expected)
    }))
})

layer(PgClientLive)("PgTaskStore", (it) => {
  taskStoreContract(
    it,
    Layer.unwrapScoped(
      Effect.map(freshSchema("contract"), (schema) => PgTaskStore.layerPostgres({ schema, time: "clock", listen: false }))
    ),
    { settleMany: true }
  )

  it.scoped("records own their Dates: two stores (other schemas, other options) and two rows of one claim share none", () =>
    Effect.gen(function*() {
      // in virtual time both stores claim at the same instant: a process-wide cache of Dates
      // handed both the same object, so one caller's setTime moved the other store's record
      const one = yield* storeIn(yield* freshSchema("dates"), { time: "clock", listen: false })
      const two = yield* storeIn(yield* freshSchema("dates"), { time: "clock", listen: false, prefetch: 2 })
      const runAt = new Date(0)
      yield* one.insert([task("a", { runAt }), task("b", { runAt })])
      yield* two.insert([task("c", { runAt })])
      const claim = { names: ["n"], limit: 2, owner: "x", leaseMillis: 1000 }
      const [a, b] = yield* one.claim(claim)
      const [c] = yield* two.claim(claim)
      assert.isDefined(a)
      assert.isDefined(b)
      assert.isDefined(c)
      const dates = [a!, b!, c!].flatMap((r) => [r.runAt, r.createdAt, r.startedAt!, r.updatedAt, r.lockedUntil!])
      assert.strictEqual(new Set(dates).size, dates.length)
      assert.notStrictEqual(a!.runAt, runAt)
      const before = c!.startedAt!.getTime()
      a!.startedAt!.setTime(123)
      assert.strictEqual(c!.startedAt!.getTime(), before)
      const settled = yield* one.settleMany!("x", [[a!.id, { _tag: "Completed", result: null }], [
        b!.id,
        { _tag: "Completed", result: null }
      ]])
      const finished = settled.flatMap(Option.toArray)
      assert.strictEqual(finished.length, 2)
      const times = finished.flatMap((r) => [r.updatedAt, r.finishedAt!])
      assert.strictEqual(new Set(times).size, times.length)
    }))
})

// real time from here on: the database's clock, connections and notifications are the subject
layer(PgClientLive, { excludeTestServices: true })("PgTaskStore on a real database", (it) => {
  it.scoped("migrations run once per schema, also when two instances start together", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("migrate")
      const run = PgMigrations.run(schema)
      const [first, second] = yield* Effect.all([run, run], { concurrency: 2 })
      const applied = [...first, ...second].map(([, name]) => name)
      assert.deepStrictEqual(applied, Object.keys(PgMigrations.sql).map((name) => name.slice(5)))
      assert.deepStrictEqual(yield* run, [])
      const tables = yield* sql<{ table_name: string }>`
        SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`
      assert.deepStrictEqual(tables.map((t) => t.table_name), [
        "effect_tasks_migrations",
        "error_logs",
        "task_feed_subscribers",
        "task_metrics",
        "task_status"
      ])
    }))

  it.scoped("each schema is a queue of its own", () =>
    Effect.gen(function*() {
      const one = yield* storeIn(yield* freshSchema("own"), { listen: false })
      const two = yield* storeIn(yield* freshSchema("own"), { listen: false })
      yield* one.insert([task("a")])
      assert.deepStrictEqual(yield* two.claim({ names: ["n"], limit: 5, owner: "x", leaseMillis: 1000 }), [])
      assert.strictEqual((yield* one.claim({ names: ["n"], limit: 5, owner: "x", leaseMillis: 1000 })).length, 1)
    }))

  it.scoped("claimers on two store instances never take the same task", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("skip")
      const one = yield* storeIn(schema, { listen: false })
      const two = yield* storeIn(schema, { listen: false })
      yield* one.insert(Array.from({ length: 300 }, (_, i) => task(`t${i}`)))
      const drain = (store: TaskStore, owner: string) =>
        Effect.iterate([] as Array<string>, {
          while: (taken) => taken.length === 0 || taken[taken.length - 1] !== "",
          body: (taken) =>
            Effect.map(store.claim({ names: ["n"], limit: 1, owner, leaseMillis: 60_000 }), (records) => [
              ...taken,
              records[0]?.id ?? ""
            ])
        })
      const workers = [one, two].flatMap((store, s) => Array.from({ length: 6 }, (_, w) => drain(store, `o${s}${w}`)))
      const results = yield* Effect.all(workers, { concurrency: "unbounded" })
      const taken = results.flat().filter((taskId) => taskId !== "")
      assert.strictEqual(taken.length, 300)
      assert.strictEqual(new Set(taken).size, 300)
      assert.strictEqual(yield* one.pendingCount, 0)
    }))

  it.scoped("concurrent inserts with one idempotency key store one task", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("idem")
      const stores = yield* Effect.all(Array.from({ length: 3 }, () => storeIn(schema, { listen: false })))
      const results = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) => stores[i % 3]!.insert([task(`t${i}`, { idempotencyKey: "same" })])),
        { concurrency: "unbounded" }
      )
      const flat = results.flat()
      assert.strictEqual(flat.filter((r) => r.inserted).length, 1)
      const winner = flat.find((r) => r.inserted)!.id
      assert.isTrue(flat.every((r) => r.id === winner))
      assert.strictEqual((yield* stores[0]!.list({})).length, 1)
    }))

  it.scoped("an insert through one instance wakes the listeners of another (LISTEN/NOTIFY), as a stream and as callbacks", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("wake")
      const producer = yield* storeIn(schema, { listen: false })
      const consumer = yield* storeIn(schema)
      const signals = yield* Queue.unbounded<void>()
      yield* Effect.forkScoped(Stream.runForEach(consumer.wakeups, () => Queue.offer(signals, undefined)))
      let called = 0
      const subscription = yield* Scope.make()
      yield* Scope.extend(consumer.onWakeup!(() => called++), subscription)
      // the listener announces itself once LISTEN is live (it gives no other ready signal)
      yield* Queue.take(signals).pipe(Effect.timeout(Duration.seconds(10)))
      const before = called
      yield* producer.insert([task("a")])
      yield* Queue.take(signals).pipe(Effect.timeout(Duration.seconds(5)))
      assert.strictEqual(yield* Queue.size(signals), 0)
      // the callback is called before the stream hears of it
      assert.strictEqual(called, before + 1)
      // once its scope closes, it is called no more
      yield* Scope.close(subscription, Exit.void)
      yield* producer.insert([task("b")])
      yield* Queue.take(signals).pipe(Effect.timeout(Duration.seconds(5)))
      assert.strictEqual(called, before + 1)
    }))

  it.scoped("a claim whose caller stops waiting while it runs hands its task back", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("abandon")
      const store = yield* storeIn(schema, { listen: false })
      yield* store.insert([task("a")])
      // hold the claim statement in the database: a lock that conflicts with its UPDATE
      const locked = yield* Deferred.make<void>()
      const unlock = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(sql.withTransaction(
        Effect.zipRight(
          sql.unsafe(`LOCK TABLE "${schema}".task_status IN EXCLUSIVE MODE`),
          Effect.zipRight(Deferred.succeed(locked, undefined), Deferred.await(unlock))
        )
      ))
      yield* Deferred.await(locked)
      const claiming = yield* Effect.fork(store.claim({ names: ["n"], limit: 1, owner: "gone", leaseMillis: 60_000 }))
      const claims = (waiting: boolean) =>
        sql`SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE ${`%"${schema}".task_claim%`}
            AND (wait_event_type = 'Lock') = ${waiting}`
      const until = <A>(effect: Effect.Effect<ReadonlyArray<A>, unknown>, present: boolean) =>
        effect.pipe(
          Effect.filterOrFail((rows) => (rows.length > 0) === present),
          Effect.retry(Schedule.spaced("20 millis")),
          Effect.timeout("5 seconds")
        )
      yield* until(claims(true), true)
      yield* Fiber.interrupt(claiming)
      yield* Deferred.succeed(unlock, undefined)
      yield* Fiber.join(holder)
      // the abandoned claim goes on to its end, in the database, and is undone: the task is back
      // in the queue with its attempt uncounted (it never started), the claim's start time kept
      yield* until(claims(false), false)
      yield* until(claims(true), false)
      const returned = yield* store.get(id("a")).pipe(
        Effect.map(Option.getOrThrow),
        Effect.filterOrFail((record) => record.status === "pending" && record.startedAt !== null),
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeout("5 seconds")
      )
      assert.strictEqual(returned.attempt, 0)
      assert.isNull(returned.lockedBy)
      const [taken] = yield* store.claim({ names: ["n"], limit: 1, owner: "next", leaseMillis: 60_000 })
      assert.strictEqual(taken?.id, "a")
      assert.strictEqual(taken?.attempt, 1)
    }))

  it.scoped("prefetch: one claim takes tasks ahead, later claims get them at once, a buffer a quarter used refills, and the rest go back on close", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("prefetch")
      const reader = yield* storeIn(schema, { listen: false })
      const names = Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, "0")}`)
      yield* reader.insert(names.map((name) => task(name)))
      const scope = yield* Scope.make()
      const store = yield* Scope.extend(storeIn(schema, { listen: false, prefetch: 8 }), scope)
      const claimA = (limit: number) => store.claim({ names: ["n"], limit, owner: "A", leaseMillis: 60_000 })
      const status = (name: string) => Effect.map(reader.get(id(name)), (r) => Option.getOrThrow(r).status)
      const statuses = Effect.all(names.map(status))
      assert.deepStrictEqual((yield* claimA(1)).map((r) => r.id), ["t00"])
      assert.deepStrictEqual(yield* statuses, [...Array(9).fill("processing"), ...Array(3).fill("pending")])
      // answered from the ones claimed ahead (7 left of 8: no refill): t09, still pending, proves
      // no claim went to the database
      assert.deepStrictEqual((yield* claimA(1)).map((r) => r.id), ["t01"])
      assert.deepStrictEqual(yield* statuses, [...Array(9).fill("processing"), ...Array(3).fill("pending")])
      // 5 left of 8: a claim ahead refills the buffer in the background
      assert.deepStrictEqual((yield* claimA(2)).map((r) => r.id), ["t02", "t03"])
      yield* statuses.pipe(
        Effect.filterOrFail((all) => all.every((s) => s === "processing")),
        Effect.retry(Schedule.spaced("20 millis")),
        Effect.timeout("5 seconds")
      )
      yield* Scope.close(scope, Exit.void)
      for (const name of names.slice(4)) {
        const record = Option.getOrThrow(yield* reader.get(id(name)))
        assert.strictEqual(record.status, "pending")
        assert.strictEqual(record.attempt, 0)
      }
      assert.deepStrictEqual(yield* Effect.all(names.slice(0, 4).map(status)), Array(4).fill("processing"))
    }))

  it.scoped("prefetch: a claim that finds the buffer empty while a claim ahead is on its way waits for it, and sends none", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("refilled")
      const reader = yield* storeIn(schema, { listen: false })
      yield* reader.insert(Array.from({ length: 12 }, (_, i) => task(`t${String(i).padStart(2, "0")}`)))
      // the second task_claim (the claim ahead) waits for the gate
      const caller = PgTaskStore.makeCaller(sql, schema)
      const gate = yield* Deferred.make<void>()
      let claims = 0
      const gated: FunctionCaller = {
        call: (name, args) =>
          name !== "task_claim"
            ? caller.call(name, args)
            : Effect.suspend(() => {
              claims++
              return claims === 2 ? Effect.zipRight(Deferred.await(gate), caller.call(name, args)) : caller.call(name, args)
            })
      }
      const store = yield* SqlTaskStore.make(gated, Stream.never, { prefetch: 4 })
      const claimA = (limit: number) => store.claim({ names: ["n"], limit, owner: "A", leaseMillis: 60_000 })
      assert.deepStrictEqual((yield* claimA(1)).map((r) => r.id), ["t00"])
      // 3 left of 4: the claim ahead goes out (and waits at the gate)
      assert.deepStrictEqual((yield* claimA(1)).map((r) => r.id), ["t01"])
      yield* Effect.suspend(() => claims === 2 ? Effect.void : Effect.fail("not yet")).pipe(
        Effect.retry(Schedule.spaced("5 millis")),
        Effect.timeout("5 seconds")
      )
      assert.deepStrictEqual((yield* claimA(3)).map((r) => r.id), ["t02", "t03", "t04"])
      const waiting = yield* Effect.fork(claimA(1))
      yield* Effect.sleep("100 millis")
      assert.isNull(waiting.unsafePoll())
      assert.strictEqual(claims, 2)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual((yield* Fiber.join(waiting)).map((r) => r.id), ["t05"])
      assert.strictEqual(claims, 2)
    }))

  it.scoped("ahead: tasks claimed ahead are taken without a claim, settle like any, and a wrapper that replaces claim is not bypassed", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("ahead")
      const plain = yield* storeIn(schema, { listen: false })
      assert.isUndefined(plain.ahead)
      const store = yield* storeIn(schema, { listen: false, prefetch: 8 })
      const ahead = store.ahead!
      assert.isTrue(ahead.serves(store))
      assert.isFalse(ahead.serves({ ...store, claim: (options) => store.claim(options) }))
      const options = { names: ["n"], limit: 1, owner: "A", leaseMillis: 60_000 }
      assert.isUndefined(ahead.take(options)) // nothing claimed yet: the engine calls claim
      yield* store.insert(["a", "b", "c"].map((name) => task(name)))
      assert.deepStrictEqual((yield* store.claim(options)).map((r) => r.id), ["a"])
      const b = ahead.take(options)!
      assert.deepStrictEqual([b.id, b.name, b.payload, b.attempt], ["b", "n", { taskId: "b" }, 1])
      assert.isUndefined(ahead.take({ ...options, owner: "B" })) // another owner's buffer: empty
      const settled = Option.getOrThrow(yield* store.settle(b.id, "A", { _tag: "Completed", result: 7 }))
      assert.deepStrictEqual(settled, Option.getOrThrow(yield* plain.get(b.id)))
      assert.strictEqual(ahead.take(options)?.id, "c")
      assert.isUndefined(ahead.take(options))
    }))

  it.scoped("settleMany carries the last throttled progress of each task into its settlement, past maxBatch too", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("settlemany")
      // one settlement a statement: the batch is written in two
      const store = yield* storeIn(schema, { listen: false, maxBatch: 1 })
      yield* store.insert(["a", "b"].map((name) => task(name)))
      yield* store.claim({ names: ["n"], limit: 2, owner: "A", leaseMillis: 60_000 })
      yield* store.setProgress(id("b"), "A", 40)
      yield* store.setProgress(id("b"), "A", 55) // throttled: not written yet
      const settled = (yield* store.settleMany!("A", [
        [id("a"), { _tag: "Completed", result: null }],
        [id("b"), { _tag: "Failed", error: { tag: "E", message: "no", cause: "" } }]
      ])).map(Option.getOrThrow)
      assert.deepStrictEqual(settled.map((r) => [r.status, r.progress]), [["completed", 100], ["failed", 55]])
      assert.strictEqual(Option.getOrThrow(yield* store.get(id("b"))).progress, 55)
    }))

  it.scoped("a settlement's record, made from the claimed one and task_settle's lean answer, is the row the database holds", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("settled")
      const store = yield* storeIn(schema, { listen: false })
      const other = yield* storeIn(schema, { listen: false })
      yield* store.insert(["a", "b", "c", "d", "e"].map((name, i) => task(name, { priority: i, idempotencyKey: `k${i}` })))
      const claimed = yield* store.claim({ names: ["n"], limit: 5, owner: "A", leaseMillis: 60_000 })
      assert.deepStrictEqual(claimed.map((r) => r.id).sort(), ["a", "b", "c", "d", "e"])
      for (const record of claimed) assert.deepStrictEqual(record, Option.getOrThrow(yield* store.get(record.id)))
      yield* store.setProgress(id("b"), "A", 30)
      const retryAt = new Date(Date.now() + 60_000)
      const error = { tag: "E", message: "no", cause: "" }
      const settled = yield* store.settleMany!("A", [
        [id("a"), { _tag: "Completed", result: { total: 3, items: ["x", null] } }],
        [id("b"), { _tag: "Failed", error }],
        [id("c"), { _tag: "Retry", runAt: retryAt, error }],
        [id("d"), { _tag: "Released" }]
      ])
      // "e" is settled by a store that did not claim it (same owner): its record is read back
      const fromOther = yield* other.settle(id("e"), "A", { _tag: "Cancelled" })
      for (const record of [...settled, fromOther].map(Option.getOrThrow)) {
        assert.deepStrictEqual(record, Option.getOrThrow(yield* store.get(record.id)), record.id)
      }
      assert.deepStrictEqual(
        [...settled, fromOther].map((r) => Option.getOrThrow(r).status),
        ["completed", "failed", "pending", "pending", "cancelled"]
      )
      // not held any more: a second settlement changes nothing
      assert.isTrue(Option.isNone(yield* store.settle(id("a"), "A", { _tag: "Completed", result: 1 })))
    }))

  it.scoped("ids that array syntax quotes or escapes (quotes, backslashes, commas, braces, NULL, a newline) settle like any other", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("arrays")
      const store = yield* storeIn(schema, { listen: false })
      const odd = ["a\"b", "c\\d", "e,f", "g{h}", "NULL", " k ", "é ✓", "\\\"", "i\nj"]
      // without the newline the arrays go as JSON-made literals; with it, through pg's encoder
      for (const ids of [odd.slice(0, -1), odd.slice(-1)]) {
        yield* store.insert(ids.map((name) => task(name)))
        const claimed = yield* store.claim({ names: ["n"], limit: 20, owner: "o\"\\,{}", leaseMillis: 60_000 })
        assert.sameMembers(claimed.map((r) => r.id), ids)
        const settled = yield* store.settleMany!(
          "o\"\\,{}",
          ids.map((name) => [id(name), { _tag: "Retry", runAt: new Date(Date.now() + 60_000), error: { tag: name, message: name, cause: "" } }] as const)
        )
        assert.deepStrictEqual(settled.map((r) => Option.getOrThrow(r).id), ids)
        for (const name of ids) {
          const record = Option.getOrThrow(yield* store.get(id(name)))
          assert.strictEqual(record.status, "pending", name)
          assert.strictEqual(record.error?.message, name)
        }
      }
    }))

  it.scoped("a claim, a heartbeat and a progress write are heap-only updates: no index entry each", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("hot")
      yield* storeIn(schema, { listen: false })
      const n = 200
      yield* sql.unsafe(
        `INSERT INTO "${schema}".task_status (id, name, payload, run_at, sort_key, created_at, updated_at)
         SELECT 't' || g, 'n', jsonb_build_object('i', g), now(), now(), now(), now() FROM generate_series(1, ${n}) g`
      )
      // in one transaction, whose own counts pg_stat_xact_user_tables shows
      const hot = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`SELECT * FROM "${schema}".task_claim('A', ARRAY['n'], ${n}, 60000)`)
        yield* sql.unsafe(`SELECT "${schema}".task_heartbeat('A', ARRAY['t1', 't2'], 60000)`)
        yield* sql.unsafe(`SELECT * FROM "${schema}".task_set_progress('[{"id": "t3", "owner": "A", "progress": 50}]')`)
        const [row] = yield* sql.unsafe<{ updated: number; hot: number }>(
          `SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot FROM pg_stat_xact_user_tables
           WHERE relid = '"${schema}".task_status'::regclass`
        )
        return row!
      }))
      assert.strictEqual(hot.updated, n + 3)
      assert.strictEqual(hot.hot, n + 3)
    }))

  it.scoped("claims and submits find their rows by primary key, not by a scan of the table", () =>
    Effect.gen(function*() {
      // the planner, misled by its estimates, hash-joined a seq scan of task_status into every
      // claim and insert (O(table)); the functions forbid those joins
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("plans")
      yield* storeIn(schema, { listen: false })
      const rows = yield* sql<{ name: string; config: ReadonlyArray<string> | null }>`
        SELECT p.proname AS name, p.proconfig AS config FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ${schema} AND p.proname IN ('task_claim', 'task_insert', 'task_settle', 'task_set_progress')
        ORDER BY 1`
      assert.deepStrictEqual(rows.map((r) => r.name), ["task_claim", "task_insert", "task_set_progress", "task_settle"])
      for (const row of rows) {
        assert.includeMembers([...(row.config ?? [])], ["enable_hashjoin=off", "enable_mergejoin=off"], row.name)
      }
    }))

  it.scoped("prefetch: tasks claimed ahead go back once half their lease is gone", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("stale")
      const store = yield* storeIn(schema, { listen: false, prefetch: 2 })
      yield* store.insert(["t0", "t1", "t2"].map((name) => task(name)))
      const [first] = yield* store.claim({ names: ["n"], limit: 1, owner: "A", leaseMillis: 400 })
      assert.strictEqual(first?.id, "t0")
      // the sweep (every second) returns t1 and t2, unclaimed, so another instance can run them
      const back = yield* store.list({ status: "pending" }).pipe(
        Effect.filterOrFail((records) => records.length === 2),
        Effect.retry(Schedule.spaced("50 millis")),
        Effect.timeout("5 seconds")
      )
      assert.deepStrictEqual(back.map((r) => [r.id, r.attempt]), [["t2", 0], ["t1", 0]])
    }))

  it.scoped("progress writes are throttled: a burst makes two writes, and the last value lands", () =>
    Effect.gen(function*() {
      const store = yield* storeIn(yield* freshSchema("progress"), { listen: false, progressInterval: "200 millis" })
      yield* store.insert([task("a")])
      yield* store.claim({ names: ["n"], limit: 1, owner: "o", leaseMillis: 60_000 })
      const changes = yield* store.subscribe
      for (let p = 1; p <= 50; p++) yield* store.setProgress(id("a"), "o", p)
      // the first write went at once; the other 49 calls wait for one trailing write
      const written = yield* Stream.take(changes, 2).pipe(Stream.runCollect, Effect.timeout("5 seconds"))
      assert.deepStrictEqual(Chunk.toReadonlyArray(written).map((r) => r.progress), [1, 50])
      const record = yield* store.get(id("a"))
      assert.strictEqual(Option.getOrThrow(record).progress, 50)
    }))

  it.scoped("time: \"database\" makes a delayed task wait for the database's clock", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const store = yield* storeIn(yield* freshSchema("dbtime"), { listen: false })
      const now = (yield* sql<{ now: Date }>`SELECT now() AS now`)[0]!.now
      yield* store.insert([task("a", { runAt: new Date(now.getTime() + 400) })])
      const claimNow = store.claim({ names: ["n"], limit: 1, owner: "o", leaseMillis: 60_000 })
      assert.deepStrictEqual(yield* claimNow, [])
      const [taken] = yield* claimNow.pipe(
        Effect.filterOrFail((records) => records.length > 0),
        Effect.retry(Schedule.spaced("25 millis")),
        Effect.timeout("5 seconds")
      )
      const later = (yield* sql<{ later: Date }>`SELECT now() AS later`)[0]!.later
      assert.strictEqual(taken?.id, "a")
      assert.isAtLeast(later.getTime(), now.getTime() + 400)
      assert.isAtLeast(taken!.startedAt!.getTime(), now.getTime() + 400)
    }))

  it.scoped("database errors fail with StoreUnavailable, naming the operation", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("broken")
      const store = yield* storeIn(schema, { listen: false })
      yield* sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`)
      const error = yield* Effect.flip(store.get(id("a")))
      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.strictEqual(error.operation, "task_get")
      assert.match(error.reason, /does not exist/)
    }))

  it.scoped("reserved connections: kept between statements, prepared, the pool takes the overflow, and a killed one is replaced", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const execute = yield* PgTaskStore.reservedExecute(sql, 2)
      const pidOf = Effect.map(execute("SELECT pg_backend_pid() AS pid", []), (rows) => rows[0]!.pid as number)
      // one at a time, statements keep to the first lane's connection
      const first = yield* pidOf
      assert.strictEqual(yield* pidOf, first)
      // as named statements, prepared once on the connection
      const prepared = yield* execute("SELECT name, statement FROM pg_prepared_statements", [])
      assert.isTrue(
        prepared.some((row) => String(row.name).startsWith("effect_tasks_") && String(row.statement).includes("pg_backend_pid")),
        JSON.stringify(prepared)
      )
      // five at once: two lanes and three pooled connections, every one answers
      const pids = yield* Effect.all(
        Array.from({ length: 5 }, () =>
          Effect.map(execute("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)", []), (rows) => rows[0]!.pid as number)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(pids).size, 5)
      assert.include(pids, first)
      // a failed statement gives its lane back; the next one is served
      yield* Effect.flip(execute("SELECT 1 / 0", []))
      assert.isNumber(yield* pidOf)
      // a connection killed under a lane: the statement on it fails, the lane reserves a new one
      const lane = yield* pidOf
      yield* sql`SELECT pg_terminate_backend(${lane})`
      const gone = sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${lane}`
      yield* Effect.repeat(gone, { until: (rows) => rows[0]!.n === 0, schedule: Schedule.spaced("10 millis") })
      assert.isTrue(Exit.isFailure(yield* Effect.exit(execute("SELECT 1", []))))
      const replaced = yield* pidOf
      assert.notStrictEqual(replaced, lane)
      assert.isNumber(replaced)
    }))

  it.scoped("heartbeats, settlements and progress writes of overlapping tasks in opposite orders never deadlock", () =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const schema = yield* freshSchema("locks")
      yield* storeIn(schema, { listen: false })
      // through the pool: each call on a connection (a transaction) of its own
      const caller = PgTaskStore.makeCaller(sql, schema)
      const n = 40
      yield* caller.call("task_insert", {
        p_tasks: Array.from({ length: n }, (_, i) => ({
          id: `t${String(i).padStart(3, "0")}`,
          name: "n",
          payload: {},
          priority: 0,
          run_at: new Date().toISOString(),
          idempotency_key: null
        })),
        p_now: null,
        p_aging_ms: 60_000
      })
      const failures: Array<string> = []
      for (let round = 0; round < 30 && failures.length === 0; round++) {
        const claimed = yield* caller.call("task_claim", {
          p_owner: "o",
          p_names: ["n"],
          p_limit: n,
          p_lease_ms: 60_000,
          p_now: null,
          p_aging_ms: 60_000
        })
        const ids = claimed.map((row) => row.id).sort()
        assert.strictEqual(ids.length, n)
        const down = [...ids].reverse()
        // each half overlaps the others, in the other order
        const results = yield* Effect.all([
          Effect.either(caller.call("task_heartbeat", { p_owner: "o", p_ids: ids, p_lease_ms: 60_000, p_now: null })),
          Effect.either(caller.call("task_set_progress", {
            p_updates: down.map((id) => ({ id, owner: "o", progress: round + 1 })),
            p_now: null
          })),
          Effect.either(caller.call("task_heartbeat", { p_owner: "o", p_ids: down, p_lease_ms: 60_000, p_now: null })),
          Effect.either(caller.call("task_settle", {
            p_owners: down.map(() => "o"),
            p_ids: down,
            p_outcomes: down.map(() => "released" as const),
            p_values: down.map(() => null),
            p_run_ats: down.map(() => null),
            p_progress: down.map(() => null),
            p_now: null,
            p_aging_ms: 60_000,
            p_synchronous: false
          }))
        ], { concurrency: "unbounded" })
        for (const result of results) if (result._tag === "Left") failures.push(result.left.reason)
        // whatever was not settled (a heartbeat or progress write came first) is released now
        yield* caller.call("task_settle", {
          p_owners: ids.map(() => "o"),
          p_ids: ids,
          p_outcomes: ids.map(() => "released" as const),
          p_values: ids.map(() => null),
          p_run_ats: ids.map(() => null),
          p_progress: ids.map(() => null),
          p_now: null,
          p_aging_ms: 60_000,
          p_synchronous: false
        })
      }
      assert.deepStrictEqual(failures, [])
    }), { timeout: 60_000 })

  it.scoped("the pg client under a reserved connection is where the store reads it (a private field of @effect/sql-pg)", () =>
    Effect.gen(function*() {
      // PgTaskStore reads the private `pg` field of @effect/sql-pg's connection to prepare its
      // statements and to end a broken connection: this fails when an upgrade moves or renames it
      const sql = yield* PgClient.PgClient
      const connection = yield* sql.reserve
      const field = (connection as unknown as { readonly pg?: unknown }).pg
      assert.instanceOf(field, Pg.Client)
      const raw = PgTaskStore.rawClientOf(connection)
      assert.strictEqual(raw, field)
      // and it is the connection's own session, not another one of the pool
      const [row] = yield* connection.execute("SELECT pg_backend_pid() AS pid", [], undefined)
      assert.strictEqual((field as { readonly processID?: unknown }).processID, row!.pid)
    }))

  it.scoped("the stores of one client keep at most a third of its pool reserved, so other queries still run", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("lanes")
      const small = yield* Layer.build(PgClient.layer({ url: Redacted.make(databaseUrl()), maxConnections: 6 }))
      // two lanes for the first store, none left for the others
      const stores = [
        yield* Effect.provide(storeIn(schema, { listen: false, reservedConnections: 10 }), small),
        yield* Effect.provide(storeIn(schema, { listen: false }), small),
        yield* Effect.provide(storeIn(schema, { listen: false }), small)
      ]
      yield* stores[0]!.insert([task("a"), task("b")])
      // every store busy at once (each would hold two lanes for good if it could), and the
      // application beside them: the connections not reserved serve what the lanes cannot
      const busy = Effect.provide(Effect.flatMap(PgClient.PgClient, (sql) => sql`SELECT pg_sleep(0.05)`), small)
      const counts = yield* Effect.all(stores.flatMap((store) => [store.pendingCount, store.pendingCount]), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(counts, [2, 2, 2, 2, 2, 2])
      yield* Effect.all([busy, busy, busy, busy], { concurrency: "unbounded" }).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "a query waited for a connection" })
      )
    }))

  it.scoped("a payload that is not JSON is refused with StoreUnavailable, and nothing is stored", () =>
    Effect.gen(function*() {
      const store = yield* storeIn(yield* freshSchema("json"), { listen: false })
      const error = yield* Effect.flip(store.insert([task("a", { payload: { big: 1n } })]))
      assert.strictEqual(error.operation, "task_insert")
      assert.match(error.reason, /not JSON/)
      assert.deepStrictEqual(yield* store.list({}), [])
    }))

  it.scoped("layerPostgresConfig connects to DATABASE_URL from the config", () =>
    Effect.gen(function*() {
      const schema = yield* freshSchema("config")
      const context = yield* Layer.build(PgTaskStore.layerPostgresConfig({ schema, listen: false })).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", databaseUrl()]])))
      )
      const store = Context.get(context, TaskStore)
      yield* store.insert([task("a")])
      assert.strictEqual(yield* store.pendingCount, 1)
      const missing = yield* Effect.flip(
        Layer.build(PgTaskStore.layerPostgresConfig({ schema })).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
      )
      assert.strictEqual(missing._tag, "ConfigError")
    }))
})
