/**
 * BEP 3 HTTP announce over Effect's HttpClient, asking for compact peers
 * (BEP 23) and reading `peers6` (BEP 7) and dictionary peer lists too; and
 * BEP 48 scrape of one torrent.
 *
 * Limits: 15 s per announce or scrape (redirects included), 4 MiB of response body,
 * 5 redirects.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Duration, Effect, Layer, Option, Result, Schema, Stream } from "effect"
import * as HttpClient from "effect/http/HttpClient"
import * as NetAddress from "effect/net/NetAddress"
import * as Bencode from "../protocol/Bencode.ts"
import * as Tracker from "./Tracker.ts"

const timeout = Duration.seconds(15)
const maxResponseBytes = 4 * 1024 * 1024
const maxRedirects = 5

export const make = Effect.gen(function*() {
  const client = (yield* HttpClient.HttpClient).pipe(HttpClient.followRedirects(maxRedirects))

  /** The status and body of a GET, within the limits. */
  const get = (url: string) =>
    client.get(url).pipe(
      Effect.flatMap((response) =>
        Effect.map(readBody(response.stream), (body) => ({ body, status: response.status }))
      ),
      Effect.catchTag("HttpClientError", (cause) => Effect.fail(new Tracker.Network({ cause }))),
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new Tracker.Timeout({ seconds: Duration.toSeconds(timeout) }))
      })
    )

  const announce = Effect.fn("HttpTracker.announce")(
    function*(url: URL, request: Tracker.AnnounceRequest) {
      const { body, status } = yield* get(announceUrl(url, request))
      return yield* Effect.fromResult(parse(status, body))
    },
    Tracker.withUrl
  )

  const scrape = Effect.fn("HttpTracker.scrape")(
    function*(url: URL, infoHash: Uint8Array) {
      const target = scrapeUrl(url)
      if (target === undefined) {
        return yield* new Tracker.UnsupportedUrl({
          problem: "it has no scrape URL (BEP 48: the announce URL's last segment must start with \"announce\")"
        })
      }
      const { body, status } = yield* get(
        `${target}${target.includes("?") ? "&" : "?"}info_hash=${percentEncode(infoHash)}`
      )
      return yield* Effect.fromResult(parseScrape(status, body, infoHash))
    },
    Tracker.withUrl
  )

  return Tracker.HttpTransport.of({ announce, scrape })
})

/** Needs an `HttpClient` that does not follow redirects itself (we bound them). */
export const layer = Layer.effect(Tracker.HttpTransport, make)

export const layerNode = layer.pipe(Layer.provide(NodeHttpClient.layerNodeHttp))

/** The announce URL with our query appended (keeping any passkey query it has). */
export const announceUrl = (url: URL, request: Tracker.AnnounceRequest): string => {
  const params = [
    `info_hash=${percentEncode(request.infoHash)}`,
    `peer_id=${percentEncode(request.peerId)}`,
    `port=${request.port}`,
    `uploaded=${request.uploaded}`,
    `downloaded=${request.downloaded}`,
    `left=${request.left}`,
    "compact=1",
    `numwant=${request.numWant}`
  ]
  if (request.event !== "none") params.push(`event=${request.event}`)
  if (request.key !== undefined) params.push(`key=${request.key.toString(16).padStart(8, "0")}`)
  if (request.trackerId !== undefined) params.push(`trackerid=${encodeURIComponent(request.trackerId)}`)
  const base = url.href.replace(/#.*$/, "")
  return `${base}${url.search === "" ? "?" : "&"}${params.join("&")}`
}

/**
 * The scrape URL of an announce URL (BEP 48): "announce" at the start of
 * its last path segment becomes "scrape", the query kept; none when the
 * segment does not start with "announce".
 */
export const scrapeUrl = (url: URL): string | undefined => {
  const slash = url.pathname.lastIndexOf("/")
  const last = url.pathname.slice(slash + 1)
  if (!last.startsWith("announce")) return undefined
  const scrape = new URL(url.href.replace(/#.*$/, ""))
  scrape.pathname = `${url.pathname.slice(0, slash + 1)}scrape${last.slice("announce".length)}`
  return scrape.href
}

/** Escapes every byte that is not unreserved (RFC 3986), as trackers expect for raw 20-byte values. */
const percentEncode = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

const readBody = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    let size = 0
    yield* Stream.runForEach(stream, (chunk) => {
      size += chunk.length
      if (size > maxResponseBytes) {
        return Effect.fail(new Tracker.BadResponse({ problem: `the body is larger than ${maxResponseBytes} bytes` }))
      }
      chunks.push(chunk)
      return Effect.void
    })
    return Buffer.concat(chunks)
  })

const Refusal = Schema.Struct({ "failure reason": Schema.Uint8Array })

const DictPeer = Schema.Struct({ ip: Schema.Uint8Array, port: Schema.Port })

const Wire = Schema.Struct({
  interval: Schema.Natural,
  "min interval": Schema.optionalKey(Schema.Natural),
  "tracker id": Schema.optionalKey(Schema.Uint8Array),
  complete: Schema.optionalKey(Schema.Natural),
  incomplete: Schema.optionalKey(Schema.Natural),
  "warning message": Schema.optionalKey(Schema.Uint8Array),
  peers: Schema.optionalKey(Schema.Union([Schema.Uint8Array, Schema.Array(DictPeer)])),
  peers6: Schema.optionalKey(Schema.Uint8Array)
})

const bad = (problem: string) => new Tracker.BadResponse({ problem })

/** A tracker's answer decoded: its refusal, a status other than 200 and bad bencode are failures. */
const decodeAnswer = (status: number, body: Uint8Array) => Result.gen(function*() {
  const decoded = Bencode.decode(body)
  // Trackers send "failure reason" with 200 and with error statuses alike.
  const refusal = Result.isSuccess(decoded) ? Schema.decodeUnknownOption(Refusal)(decoded.success) : Option.none()
  if (Option.isSome(refusal)) {
    return yield* Result.fail(new Tracker.Failure({ text: Bencode.text(refusal.value["failure reason"]) }))
  }
  if (status !== 200) return yield* Result.fail(bad(`HTTP status ${status}`))
  return yield* Result.mapError(decoded, (error) => bad(error.message))
})

const ScrapeWire = Schema.Struct({
  files: Schema.Record(
    Schema.String,
    Schema.Struct({
      complete: Schema.Natural,
      incomplete: Schema.Natural,
      downloaded: Schema.optionalKey(Schema.Natural)
    })
  )
})

/**
 * A scrape answer for one torrent. Its `files` are keyed by raw info-hashes,
 * which our bencode reads as UTF-8 text: the torrent's entry is the key its
 * hash reads as (or the only entry).
 */
export const parseScrape = (status: number, body: Uint8Array, infoHash: Uint8Array) => Result.gen(function*() {
  const value = yield* decodeAnswer(status, body)
  const wire = yield* Result.mapError(Schema.decodeUnknownResult(ScrapeWire)(value), (error) => bad(error.message))
  const entries = Object.values(wire.files)
  const entry = wire.files[Bencode.text(infoHash)] ?? (entries.length === 1 ? entries[0] : undefined)
  if (entry === undefined) return yield* Result.fail(bad("no entry for the torrent (the tracker does not know it)"))
  const response: Tracker.ScrapeResponse = {
    seeders: entry.complete,
    leechers: entry.incomplete,
    downloaded: entry.downloaded ?? 0
  }
  return response
})

/** The response: bytes and HTTP status in, announce response or the reason it is not one out. */
export const parse = (status: number, body: Uint8Array) => Result.gen(function*() {
  const value = yield* decodeAnswer(status, body)
  const wire = yield* Result.mapError(Schema.decodeUnknownResult(Wire)(value), (error) => bad(error.message))
  const peers = wire.peers === undefined
    ? []
    : wire.peers instanceof Uint8Array
    ? yield* Tracker.compactPeers(wire.peers, 6)
    : wire.peers.slice(0, Tracker.maxPeersPerAnnounce).flatMap(dictPeer)
  const peers6 = wire.peers6 === undefined ? [] : yield* Tracker.compactPeers(wire.peers6, 18)
  const response: Tracker.AnnounceResponse = {
    interval: wire.interval,
    peers: [...peers, ...peers6].slice(0, Tracker.maxPeersPerAnnounce),
    ...(wire["min interval"] === undefined ? {} : { minInterval: wire["min interval"] }),
    ...(wire["tracker id"] === undefined ? {} : { trackerId: Bencode.text(wire["tracker id"]) }),
    ...(wire.complete === undefined ? {} : { complete: wire.complete }),
    ...(wire.incomplete === undefined ? {} : { incomplete: wire.incomplete }),
    ...(wire["warning message"] === undefined ? {} : { warning: Bencode.text(wire["warning message"]) })
  }
  return response
})

/** A dictionary-model peer; entries with a DNS name instead of an IP are skipped. */
const dictPeer = (peer: typeof DictPeer.Type): Array<Tracker.PeerAddress> => {
  const ip = NetAddress.ipFromString(Bencode.text(peer.ip))
  return Result.isSuccess(ip) ? [{ host: NetAddress.formatIp(ip.success), port: peer.port }] : []
}
