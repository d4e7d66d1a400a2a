import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import * as Codec from "../src/engine/Codec.js"

/** Schemas of the kinds the plain decoder takes, nested up to `depth`. */
const plainSchema = (depth: number): fc.Arbitrary<Schema.Schema.Any> => {
  const leaves: ReadonlyArray<Schema.Schema.Any> = [
    Schema.String,
    Schema.Number,
    Schema.Boolean,
    Schema.Int,
    Schema.NonEmptyString,
    Schema.Number.pipe(Schema.between(0, 10)),
    Schema.Literal("a"),
    Schema.Literal(1),
    Schema.Null,
    Schema.Unknown,
    Schema.Union(Schema.String, Schema.Number),
    Schema.Union(Schema.Literal("x", "y"), Schema.Null),
    Schema.NullOr(Schema.Int)
  ]
  const leaf = fc.constantFrom(...leaves)
  if (depth === 0) return leaf
  const inner = plainSchema(depth - 1)
  return fc.oneof(
    leaf,
    inner.map((item) => Schema.Array(item) as Schema.Schema.Any),
    fc.tuple(inner, inner, inner).map(([a, b, c]) =>
      Schema.Struct({ a, b: Schema.optional(b), c: Schema.optionalWith(c, { exact: true }) }) as Schema.Schema.Any
    ),
    inner.map((item) => Schema.Array(item).pipe(Schema.maxItems(2)) as Schema.Schema.Any),
    inner.map((item) => Schema.NullOr(item) as Schema.Schema.Any),
    inner.map((item) => Schema.Union(Schema.Literal("none"), item) as Schema.Schema.Any)
  )
}

/** Values for a schema: valid ones, valid ones with an extra key, and anything at all. */
const valuesFor = (schema: Schema.Schema.Any): fc.Arbitrary<unknown> => {
  const valid = Arbitrary.make(schema as Schema.Schema<unknown, unknown, never>)
  return fc.oneof(
    valid,
    valid.map((value) =>
      typeof value === "object" && value !== null && !Array.isArray(value) ? { ...value, extra: 1 } : value
    ),
    fc.anything()
  )
}

describe("Codec", () => {
  it("a plain decoder accepts every valid value, and decodes it as Schema does", () => {
    fc.assert(
      fc.property(
        plainSchema(2).chain((schema) =>
          fc.tuple(
            fc.constant(schema),
            fc.array(Arbitrary.make(schema as Schema.Schema<unknown, unknown, never>), { maxLength: 8 })
          )
        ),
        ([schema, values]) => {
          const decode = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown, never>)
          const plain = Codec.plainDecoder(schema.ast)!
          for (const value of values) {
            const expected = decode(value)
            assert.isTrue(Either.isRight(expected))
            const actual = plain(value)
            assert.notStrictEqual(actual, Codec.refused)
            if (Either.isRight(expected)) {
              assert.deepStrictEqual(actual, expected.right)
              assert.strictEqual(JSON.stringify(actual), JSON.stringify(expected.right))
            }
          }
        }
      ),
      { numRuns: 500 }
    )
  })

  it("a plain decoder answers what Schema's decoding answers, for every value it accepts", () => {
    fc.assert(
      fc.property(
        plainSchema(2).chain((schema) => fc.tuple(fc.constant(schema), fc.array(valuesFor(schema), { maxLength: 8 }))),
        ([schema, values]) => {
          const decode = Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown, never>)
          const codec = Codec.make(schema as Schema.Schema<unknown, unknown, never>)
          assert.isDefined(Codec.plainDecoder(schema.ast))
          for (const value of values) {
            const expected = decode(value)
            const actual = codec.decode(value)
            assert.strictEqual(actual._tag, expected._tag)
            if (Either.isRight(expected) && Either.isRight(actual)) {
              assert.deepStrictEqual(actual.right, expected.right)
              // the same keys in the same order (a struct's extra keys dropped)
              assert.strictEqual(JSON.stringify(actual.right), JSON.stringify(expected.right))
            } else if (Either.isLeft(expected) && Either.isLeft(actual)) {
              assert.strictEqual(actual.left.message, expected.left.message)
            }
          }
        }
      ),
      { numRuns: 500 }
    )
  })

  it("schemas with transformations, classes or parse options are left to Schema", () => {
    class Point extends Schema.Class<Point>("Point")({ x: Schema.Number }) {}
    const others: ReadonlyArray<Schema.Schema.Any> = [
      Schema.NumberFromString,
      Schema.Date,
      Point,
      Schema.Struct({ at: Schema.Date }),
      Schema.Struct({ n: Schema.optionalWith(Schema.Number, { default: () => 0 }) }),
      Schema.Record({ key: Schema.String, value: Schema.Number }),
      Schema.Tuple(Schema.String, Schema.Number),
      // an empty struct decodes to the value itself
      Schema.Struct({}),
      Schema.Struct({ a: Schema.String }).annotations({ parseOptions: { onExcessProperty: "error" } }),
      Schema.Union(Schema.Struct({ a: Schema.String }), Schema.Struct({ b: Schema.String }))
    ]
    for (const schema of others) assert.isUndefined(Codec.plainDecoder(schema.ast), String(schema))
    // and their codecs still decode as Schema does
    const codec = Codec.make(Schema.Struct({ at: Schema.Date }))
    const decoded = codec.decode({ at: "2026-01-02T00:00:00.000Z" })
    assert.isTrue(Either.isRight(decoded) && decoded.right.at instanceof Date)
  })

  it("a decoded struct is a copy with the schema's fields only", () => {
    const codec = Codec.make(Schema.Struct({ width: Schema.Int, tags: Schema.Array(Schema.String) }))
    const input = { width: 3, tags: ["a"], extra: true }
    const decoded = codec.decode(input)
    assert.isTrue(Either.isRight(decoded))
    if (Either.isRight(decoded)) {
      assert.deepStrictEqual(decoded.right, { width: 3, tags: ["a"] })
      assert.notStrictEqual(decoded.right, input)
      assert.notStrictEqual(decoded.right.tags, input.tags)
    }
    const refused = codec.decode({ width: 1.5, tags: [] })
    assert.isTrue(Either.isLeft(refused))
    // a field only inherited is Schema's to judge (a union's struct member wants its own keys)
    const tagged = Schema.NullOr(Schema.Struct({ kind: Schema.Literal("a") }))
    const inherited = Object.create({ kind: "a" }) as unknown
    assert.strictEqual(Codec.make(tagged).decode(inherited)._tag, Schema.decodeUnknownEither(tagged)(inherited)._tag)
  })
})
