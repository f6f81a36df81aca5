/**
 * A .torrent file fetched by its http(s) URL, for adding by URL (the API's
 * `url`, Transmission's `torrent-add` with an http `filename`).
 *
 * Limits: 30 s for the whole fetch (redirects included), 5 redirects, and
 * as many bytes as a .torrent may have (`Bencode.defaultLimits.maxBytes`,
 * 10 MiB): refused by its `Content-Length` before the body is read, and the
 * reading of a body sent without one stops there. Each way it can fail is a
 * `UrlFailed` whose `problem` says which, and whose message names the URL.
 */
import { Duration, Effect, Stream } from "effect"
import { HttpClient } from "effect/http"
import * as Bencode from "../protocol/Bencode.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import { UrlFailed, type UrlProblem } from "./Api.ts"

const timeout = Duration.seconds(30)
const maxRedirects = 5
/** The largest .torrent we would decode anyway. */
export const maxBytes = Bencode.defaultLimits.maxBytes

/** Whether `text` is an http or https URL (what is fetched rather than taken as a file name or magnet link). */
export const isHttpUrl = (text: string): boolean => /^https?:\/\//i.test(text)

/** The torrent at `url`; needs an `HttpClient` that does not follow redirects itself (they are bounded here). */
export const fetch = Effect.fn("FetchTorrent.fetch")(function*(url: string) {
  const fail = (problem: UrlProblem, detail: string) => Effect.fail(new UrlFailed({ url, problem, detail }))
  if (!isHttpUrl(url) || !URL.canParse(url)) return yield* fail("BadUrl", "not an http or https URL")
  const client = (yield* HttpClient.HttpClient).pipe(HttpClient.followRedirects(maxRedirects))
  const bytes = yield* Effect.gen(function*() {
    const response = yield* client.get(url)
    if (response.status >= 300 && response.status < 400) {
      return yield* fail("Redirects", `still redirected after ${maxRedirects} redirects`)
    }
    if (response.status !== 200) return yield* fail("Status", `the server answered ${response.status}, not 200`)
    const length = Number(response.headers["content-length"] ?? 0)
    if (length > maxBytes) return yield* fail("TooLarge", `it is ${length} bytes; a .torrent is at most ${maxBytes}`)
    const chunks: Array<Uint8Array> = []
    let size = 0
    yield* Stream.runForEach(response.stream, (chunk) => {
      size += chunk.length
      chunks.push(chunk)
      return size > maxBytes
        ? fail("TooLarge", `it is over ${maxBytes} bytes, the most a .torrent may have`)
        : Effect.void
    })
    return Buffer.concat(chunks)
  }).pipe(
    Effect.catchTag("HttpClientError", (error) => fail("Unreachable", `cannot fetch it: ${error.message}`)),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => fail("Timeout", `not fetched within ${Duration.toSeconds(timeout)} s`)
    })
  )
  return yield* Effect.fromResult(Metainfo.decode(bytes)).pipe(
    Effect.catch((error) => fail("NotTorrent", `it is not a .torrent file: ${error.message}`))
  )
})
