/**
 * The errors only the HTTP API has (the engine's own errors, such as `PayloadInvalid` or
 * `TaskNotFound`, are sent as they are). Each carries its HTTP status as a Schema annotation, so
 * the OpenAPI document lists it and the server encodes it with that status.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * The request body is larger than the API's `maxBodyBytes` (HTTP 413). Send a smaller payload,
 * or store large data elsewhere and submit a reference to it.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { limitBytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413 })
) {
  override get message(): string {
    return `The request body is over the limit of ${this.limitBytes} bytes`
  }
}

/**
 * The request body could not be read or is not JSON (HTTP 400).
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedBody extends Schema.TaggedError<MalformedBody>()(
  "MalformedBody",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {
  override get message(): string {
    return `The request body is not valid JSON: ${this.reason}`
  }
}

/**
 * A bearer token is required and the request had none or a wrong one (HTTP 401). Send
 * `Authorization: Bearer <token>` with the token the server was configured with.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {
  override get message(): string {
    return `Unauthorized: ${this.reason}`
  }
}

/**
 * The request has a body that is not declared as JSON (HTTP 415): send
 * `Content-Type: application/json`. (A form or a `text/plain` body is what a page on another site
 * can send without the browser asking first; it is never read as JSON.)
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { contentType: Schema.String },
  HttpApiSchema.annotations({ status: 415 })
) {
  override get message(): string {
    return `The request body must be application/json, not ${this.contentType === "" ? "undeclared" : this.contentType}`
  }
}

/**
 * A browser sent the request for a page of another site (HTTP 403): its `Sec-Fetch-Site` is
 * `cross-site`, or its `Origin` is not this server's. Configure `allowedOrigins` (or
 * `crossSite: "allow"`) for the origins that may call the API.
 *
 * @since 0.1.0
 * @category errors
 */
export class CrossSiteRequest extends Schema.TaggedError<CrossSiteRequest>()(
  "CrossSiteRequest",
  { origin: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {
  override get message(): string {
    return `Cross-site request refused (${this.reason})`
  }
}

/**
 * No route has this path (HTTP 404): check the path against the endpoints in `/openapi.json`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The path exists, with other methods (HTTP 405): the `Allow` header lists them.
 *
 * @since 0.1.0
 * @category errors
 */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()(
  "MethodNotAllowed",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 405 })
) {}

/**
 * The server failed on the request (HTTP 500): a bug or a broken dependency, logged at ERROR
 * level with the method and path. The body says no more, so that no internals leak.
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalServerError extends Schema.TaggedError<InternalServerError>()(
  "InternalServerError",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 500 })
) {}
