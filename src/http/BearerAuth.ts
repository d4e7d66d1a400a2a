/**
 * Bearer-token authentication for the HTTP API: the `Authorization` middleware the API's task and
 * metrics endpoints declare, and its layer. With a token configured, a request without
 * `Authorization: Bearer <token>` is refused with 401; with none, every request passes.
 *
 * @since 0.1.0
 */
import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
import { Unauthorized } from "./HttpError.js"

/**
 * The middleware tag: bearer security, failing with `Unauthorized`.
 *
 * @since 0.1.0
 * @category tags
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("effect-tasks/http/Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

const encoder = new TextEncoder()

/**
 * Compares a presented secret with the expected one in time that depends only on the expected
 * secret's length, never on where the two first differ.
 *
 * @since 0.1.0
 * @category utils
 */
export const constantTimeEquals = (expected: string, presented: string): boolean => {
  const a = encoder.encode(expected)
  const b = encoder.encode(presented)
  let difference = a.length ^ b.length
  for (let i = 0; i < a.length; i++) {
    // b is read at a wrapped index so the loop does the same work whatever b's length
    difference |= a[i]! ^ (b.length === 0 ? 0 : b[i % b.length]!)
  }
  return difference === 0
}

/**
 * The middleware's implementation: checks the bearer token against `token` when one is given;
 * lets every request through when `token` is `undefined`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (token: Redacted.Redacted<string> | string | undefined): Layer.Layer<Authorization> => {
  const expected = token === undefined ? undefined : typeof token === "string" ? token : Redacted.value(token)
  if (expected !== undefined && expected.length === 0) {
    throw new TypeError("BearerAuth: the token must not be empty (leave it undefined to turn authentication off)")
  }
  return Layer.succeed(
    Authorization,
    Authorization.of({
      bearer: (presented) =>
        expected === undefined
          ? Effect.void
          : Redacted.value(presented).length === 0
          ? Effect.fail(new Unauthorized({ reason: "send Authorization: Bearer <token>" }))
          : constantTimeEquals(expected, Redacted.value(presented))
          ? Effect.void
          : Effect.fail(new Unauthorized({ reason: "the bearer token is not valid" }))
    })
  )
}
