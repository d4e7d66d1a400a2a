/**
 * The Schema codecs of a task definition, compiled once: encoding a payload at submit (which
 * validates it), decoding it for the handler, and the same for results and typed failures. Also
 * the log-safe view of a payload, with every `Redacted` value hidden.
 *
 * @since 0.1.0
 * @internal
 */
import { Either, Option, ParseResult, Predicate, Redacted, Schema, SchemaAST } from "effect"

/** @internal */
export interface Codec<A> {
  readonly encode: (value: A) => Either.Either<unknown, ParseResult.ParseError>
  readonly decode: (encoded: unknown) => Either.Either<A, ParseResult.ParseError>
}

/** @internal */
export const make = <A, I>(schema: Schema.Schema<A, I, never>): Codec<A> => {
  const decode = Schema.decodeUnknownEither(schema)
  const plain = plainDecoder(schema.ast)
  return {
    encode: Schema.encodeEither(schema) as (value: A) => Either.Either<unknown, ParseResult.ParseError>,
    decode: plain === undefined ? decode : (encoded) => {
      const value = plain(encoded)
      // a value the plain check refuses gets Schema's own answer, with its error
      return value === refused ? decode(encoded) : Either.right(value as A)
    }
  }
}

/** What a plain decoder answers for a value it does not accept. @internal */
export const refused: unique symbol = Symbol("effect-tasks/Codec/refused")

type Plain = (input: unknown) => unknown

const keyword = (accepts: (input: unknown) => boolean): Plain => (input) => accepts(input) ? input : refused

/**
 * A decoder for the schemas most payloads are made of, in a few steps and no allocation but the
 * decoded structs and arrays: structs of required and optional fields, arrays, strings, numbers,
 * booleans, literals, `null`, unions of those (with at most one struct or array, beside members
 * that take no object), and filters on any of them (`Schema.Int`, `minLength`, ...), the filter
 * called as Schema calls it. It answers what Schema's decoding answers for every value it
 * accepts (a property test checks it), and `refused` for any other, which Schema then decodes to
 * find the error; `undefined` for a schema with anything else in it (transformations, classes,
 * declarations, index signatures, tuples, empty structs, parse options), which Schema always
 * decodes. Schema's own decoding of a struct of one integer allocated about 850 bytes; a payload
 * is decoded at every attempt.
 *
 * @internal
 */
export const plainDecoder = (ast: SchemaAST.AST): Plain | undefined => {
  if (
    Option.isSome(SchemaAST.getParseOptionsAnnotation(ast)) ||
    Option.isSome(SchemaAST.getDecodingFallbackAnnotation(ast))
  ) return undefined
  switch (ast._tag) {
    case "StringKeyword":
      return keyword(Predicate.isString)
    case "NumberKeyword":
      return keyword(Predicate.isNumber)
    case "BooleanKeyword":
      return keyword(Predicate.isBoolean)
    case "UndefinedKeyword":
      return keyword(Predicate.isUndefined)
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return (input) => input
    case "Literal": {
      const literal = ast.literal
      return keyword((input) => input === literal)
    }
    case "Refinement": {
      const from = plainDecoder(ast.from)
      if (from === undefined) return undefined
      return (input) => {
        const value = from(input)
        if (value === refused) return refused
        return Option.isNone(ast.filter(value, SchemaAST.defaultParseOption, ast)) ? value : refused
      }
    }
    case "Union": {
      // members whose decoding is the value itself (any of them accepting it is the answer), and
      // at most one struct or array beside members that take no object (an optional struct)
      const leaves: Array<Plain> = []
      let container: Plain | undefined
      let anyLeaf = false
      for (const member of ast.types) {
        const decode = plainDecoder(member)
        if (decode === undefined) return undefined
        const kind = leafKind(member)
        if (kind !== undefined) {
          leaves.push(decode)
          if (kind === "any") anyLeaf = true
        } else if (container === undefined) container = decode
        else return undefined
      }
      if (container !== undefined && anyLeaf) return undefined
      const object = container
      return (input) => {
        if (object !== undefined && typeof input === "object" && input !== null) return object(input)
        for (const leaf of leaves) if (leaf(input) !== refused) return input
        return refused
      }
    }
    case "TupleType": {
      if (ast.elements.length !== 0 || ast.rest.length !== 1) return undefined
      const item = plainDecoder(ast.rest[0]!.type)
      if (item === undefined) return undefined
      return (input) => {
        if (!Array.isArray(input)) return refused
        const output = new Array<unknown>(input.length)
        for (let i = 0; i < input.length; i++) {
          const value = item(input[i])
          if (value === refused) return refused
          output[i] = value
        }
        return output
      }
    }
    case "TypeLiteral": {
      // an empty struct decodes to the value itself, any object: left to Schema
      if (ast.indexSignatures.length !== 0 || ast.propertySignatures.length === 0) return undefined
      const fields: Array<{ readonly name: PropertyKey; readonly optional: boolean; readonly decode: Plain }> = []
      for (const ps of ast.propertySignatures) {
        const decode = plainDecoder(ps.type)
        if (decode === undefined) return undefined
        fields.push({ name: ps.name, optional: ps.isOptional, decode })
      }
      return (input) => {
        if (!Predicate.isRecord(input)) return refused
        const output: Record<PropertyKey, unknown> = {}
        for (const field of fields) {
          if (!Object.prototype.hasOwnProperty.call(input, field.name)) {
            // a missing required field (or one only inherited) is Schema's to judge
            if (field.optional) continue
            return refused
          }
          const value = field.decode(input[field.name])
          if (value === refused) return refused
          output[field.name] = value
        }
        return output
      }
    }
    default:
      return undefined
  }
}

/**
 * What a schema decodes to the value itself (no struct or array copied): only primitive values and
 * `null` (`"primitive"`), or possibly objects too (`"any"`); `undefined` for any other schema.
 */
const leafKind = (ast: SchemaAST.AST): "primitive" | "any" | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UndefinedKeyword":
    case "Literal":
      return "primitive"
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return "any"
    case "Refinement":
      return leafKind(ast.from)
    case "Union": {
      let kind: "primitive" | "any" = "primitive"
      for (const member of ast.types) {
        const k = leafKind(member)
        if (k === undefined) return undefined
        if (k === "any") kind = "any"
      }
      return kind
    }
    default:
      return undefined
  }
}

/**
 * The first issue of a parse error: the path to the bad field (`width`, `items.2.url`, `(root)`)
 * and what is wrong with it.
 *
 * @internal
 */
export const firstIssue = (error: ParseResult.ParseError): { readonly path: string; readonly issue: string } => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return { path: "(root)", issue: error.message }
  return { path: first.path.length === 0 ? "(root)" : first.path.map(String).join("."), issue: first.message }
}

/**
 * A copy of a decoded value fit for logs and error reports: `Redacted` values become
 * `"<redacted>"`; everything else is kept as plain data.
 *
 * @internal
 */
export const redact = (value: unknown, depth = 0): unknown => {
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (depth > 32 || value === null || typeof value !== "object") return value
  if (value instanceof Date) return value
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1))
  if (!Predicate.isRecord(value)) return String(value)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) out[key] = redact(value[key], depth + 1)
  return out
}
