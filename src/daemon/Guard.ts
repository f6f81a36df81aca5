/**
 * What every request to the daemon passes before any route runs:
 *
 * - bound to loopback, its `Host` must be an address or `localhost` (403),
 *   so a web page cannot reach the daemon through a DNS name it rebinds to
 *   127.0.0.1;
 * - an `Origin` (sent by browsers) must be the daemon's own (403), so
 *   another site's page cannot make the user's browser drive it (CSRF);
 * - with `auth`, HTTP basic credentials (401 and `WWW-Authenticate`
 *   otherwise);
 * - a body larger than `maxBodyBytes` is refused by its `Content-Length`
 *   (413) before it is read, and reading one sent without a length stops
 *   there.
 */
import { ByteSize, Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as NodeCrypto from "node:crypto"
import { hostAllowed } from "../http/TorrentServer.ts"

export interface Options {
  /** The daemon listens on a loopback address only. */
  readonly loopback: boolean
  /** `USER:PASS` for HTTP basic authentication. */
  readonly auth?: string | undefined
  readonly maxBodyBytes: number
}

const refuse = (status: number, text: string, headers: Record<string, string> = {}) =>
  Effect.succeed(HttpServerResponse.text(`${text}\n`, { status, headers }))

/** Constant-time comparison (the password is not guessed a byte at a time). */
const same = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && NodeCrypto.timingSafeEqual(x, y)
}

const authorized = (header: string | undefined, auth: string) => {
  const match = header === undefined ? null : /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  return match !== null && same(Buffer.from(match[1]!, "base64").toString("utf8"), auth)
}

/** The guard as a global middleware of the daemon's router. */
export const layer = (options: Options) =>
  HttpRouter.middleware((app) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const host = request.headers["host"]
      if (options.loopback && !hostAllowed(host)) {
        return yield* refuse(403, "use the address (127.0.0.1) or localhost in the URL")
      }
      const origin = request.headers["origin"]
      if (origin !== undefined && origin !== `http://${host}`) {
        return yield* refuse(403, `requests from ${origin} are not allowed`)
      }
      if (options.auth !== undefined && !authorized(request.headers["authorization"], options.auth)) {
        return yield* refuse(401, "authentication required", { "www-authenticate": "Basic realm=\"effect-torrent\"" })
      }
      const length = Number(request.headers["content-length"] ?? 0)
      if (length > options.maxBodyBytes) {
        return yield* refuse(413, `the body is ${length} bytes; the limit is ${options.maxBodyBytes}`, {
          connection: "close"
        })
      }
      return yield* app.pipe(Effect.provideService(HttpServerRequest.MaxBodySize, ByteSize.bytes(options.maxBodyBytes)))
    }), { global: true })
