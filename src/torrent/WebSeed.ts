/**
 * WebSeed: a torrent's HTTP servers (BEP 19, the `url-list`) as sources of
 * pieces beside its peers.
 *
 * To the Orchestrator a web seed is one more peer, keyed by its URL: it
 * connects with an id made from the URL, has every piece, never chokes, and
 * answers block requests. So its data takes the peers' path (assembled by
 * the Synchronizer, hashed and written by the verifiers), a hash failure
 * names it, and the Orchestrator bans it as it would a peer. Underneath,
 * adjacent requested blocks become one ranged GET per file they span
 * (BEP 19's URL rules: the URL is the file of a single-file torrent; a
 * multi-file torrent's files are under it, `name/path…` percent-encoded),
 * run over a few connections at once.
 *
 * A GET that fails (an error status, a wrong range, a network error, a
 * body slower than a floor rate, redirects beyond the limit) ends the
 * seed's "connection": its requests go back to the pool for the peers,
 * and the seed is tried again after the Monitor's back-off for peers. One
 * that fails that many times in a row, answers a range with the whole file,
 * or is banned for corrupt data, is dropped (with a warning).
 */
import { Clock, Data, Effect, Queue, Schema, Stream } from "effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import { createHash } from "node:crypto"
import { blockSize, type BlockRequest } from "../protocol/Block.ts"
import * as InfoHash from "../protocol/InfoHash.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"
import type { PeerCommand, PeerEvent } from "../peer/PeerEvent.ts"
import type { Outcome } from "../peer/PeerSession.ts"
import { rangeSegments } from "./DiskWriter.ts"
import { backoffMillis } from "./Monitor.ts"
import { Orchestrator } from "./Orchestrator.ts"
import * as RateLimit from "./RateLimit.ts"
import { Synchronizer } from "./Synchronizer.ts"
import { TorrentConfig } from "./TorrentConfig.ts"
import { TorrentEvents, warn } from "./TorrentEvents.ts"

export const WebSeedErrorReason = Schema.Literals([
  /** 404 or 410: the server does not have the file. */
  "NotFound",
  /** A 5xx status. */
  "ServerError",
  /** Another status we cannot use. */
  "Status",
  /** Still redirected after the most redirects we follow (a loop, likely). */
  "Redirects",
  /** The whole file (200) for a part of it: the server ignores ranges. */
  "NoRanges",
  /** A range other than the one asked for, a body of the wrong size, or a file of another size. */
  "BadRange",
  /** The body came slower than the floor rate. */
  "Timeout",
  /** The server could not be reached, or the connection broke. */
  "Network"
])
export type WebSeedErrorReason = typeof WebSeedErrorReason.Type

export class WebSeedError extends Schema.TaggedError<WebSeedError>()("WebSeedError", {
  url: Schema.String,
  reason: WebSeedErrorReason,
  detail: Schema.String
}) {
  override get message() {
    return `web seed ${this.url}: ${this.detail}`
  }
}

/** The Orchestrator told the seed to stop (banned for corrupt data). */
class Hangup extends Data.TaggedError("Hangup")<{ readonly reason: Outcome["reason"]; readonly detail: string }> {}

/** GETs at once per server. */
export const connections = 4
/** Most redirects followed for one GET. */
const maxRedirects = 5
/** Failures in a row before a seed is dropped. */
export const maxFailures = 5
/** A GET's body may come no slower than this (bytes/s), after the request timeout: a drip does not hold pieces. */
export const minRate = 16 * 1024
/** Most bytes asked in one GET (more only within one piece). */
const maxRangeBytes = 1024 * 1024

/** Failures retrying cannot mend. */
const isFatal = (reason: WebSeedErrorReason) => reason === "NoRanges"

/** The URL of each file of the torrent at web seed `base` (BEP 19), padding files included (never asked for). */
export const fileUrls = (meta: Metainfo.Metainfo, base: string): Array<string> => {
  const path = (segments: ReadonlyArray<string>) => segments.map(encodeURIComponent).join("/")
  if (!meta.multiFile) return meta.files.map(() => base.endsWith("/") ? base + path([meta.name]) : base)
  const folder = base.endsWith("/") ? base : `${base}/`
  return meta.files.map((file) => folder + path(file.path))
}

/** Whether `url` can be a web seed: http or https. */
export const isUsable = (url: string): boolean => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)

/** Adjacent requests (in the torrent's bytes) as one range, up to `maxRangeBytes` or one piece. */
interface Range {
  readonly start: number
  length: number
  readonly requests: Array<BlockRequest>
}

const rangesOf = (meta: Metainfo.Metainfo, requests: ReadonlyArray<BlockRequest>): Array<Range> => {
  const out: Array<Range> = []
  let last: Range | undefined
  for (const r of requests) {
    const start = r.index * meta.pieceLength + r.begin
    if (last !== undefined && last.start + last.length === start && last.length + r.length <= maxRangeBytes) {
      last.length += r.length
      last.requests.push(r)
    } else {
      last = { start, length: r.length, requests: [r] }
      out.push(last)
    }
  }
  return out
}

const contentRange = /^bytes (\d+)-(\d+)\/(\d+|\*)$/

/**
 * Uses every usable URL of the torrent's `url-list` until interrupted (the
 * others are a warning each). Needs the torrent's services and an HttpClient.
 */
export const runAll = (urls: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const events = yield* TorrentEvents
    const usable = [...new Set(urls)].filter((url) => isUsable(url))
    for (const url of urls.filter((url) => !isUsable(url))) {
      yield* warn(events, `web seed ${JSON.stringify(url)} ignored: not an http or https URL`)
    }
    yield* Effect.forEach(usable, run, { concurrency: "unbounded", discard: true })
  })

/** One web seed, retried after failures until it is dropped. */
export const run = Effect.fnUntraced(function*(url: string) {
  const orchestrator = yield* Orchestrator
  const events = yield* TorrentEvents
  const { session } = yield* makeSession(url)
  let failures = 0
  while (true) {
    if (orchestrator.isBanned(url, yield* Clock.currentTimeMillis)) return
    const outcome = yield* session
    if (outcome.served) failures = 0
    if (outcome.fatal || ++failures >= maxFailures) {
      return yield* warn(events, `web seed ${url} dropped: ${outcome.detail}`)
    }
    yield* Effect.logDebug(`web seed ${url}: ${outcome.detail}; again in ${backoffMillis(failures) / 1000} s`)
    yield* Effect.sleep(backoffMillis(failures))
  }
})

/** One "connection" to the seed: it ends with the first failure (or the Orchestrator's word). */
const makeSession = Effect.fnUntraced(function*(url: string) {
  const orchestrator = yield* Orchestrator
  const { meta } = yield* Synchronizer
  const config = yield* TorrentConfig
  const limits = yield* RateLimit.RateLimits
  const client = (yield* HttpClient.HttpClient).pipe(HttpClient.followRedirects(maxRedirects))
  const urls = fileUrls(meta, url)
  const handshake = {
    _tag: "Handshake" as const,
    reserved: new Uint8Array(8),
    infoHash: InfoHash.toBytes(meta.infoHash),
    // Stable across runs: a ban by id holds after a pause and resume.
    peerId: new Uint8Array(createHash("sha1").update(url).digest())
  }
  // Enough requests to keep every connection busy with two pieces (of at least 64 KiB) each.
  const depth = connections * 2 * Math.max(4, Math.ceil(meta.pieceLength / blockSize))
  const fail = (reason: WebSeedErrorReason, detail: string) => Effect.fail(new WebSeedError({ url, reason, detail }))

  /** `target.length` bytes of file `file` from `position`, into `target`. */
  const get = (file: number, position: number, target: Uint8Array) =>
    Effect.gen(function*() {
      const size = meta.files[file]!.length
      const last = position + target.length - 1
      const request = HttpClientRequest.get(urls[file]!).pipe(
        HttpClientRequest.setHeader("Range", `bytes=${position}-${last}`)
      )
      const response = yield* client.execute(request)
      const { status } = response
      const what = `${urls[file]} bytes ${position}-${last}`
      if (status === 404 || status === 410) return yield* fail("NotFound", `answered ${status} for ${urls[file]}`)
      if (status >= 500) return yield* fail("ServerError", `answered ${status} for ${what}`)
      if (status >= 300 && status < 400) {
        return yield* fail("Redirects", `redirected more than ${maxRedirects} times for ${urls[file]}`)
      }
      if (status === 200 && (position !== 0 || target.length !== size)) {
        return yield* fail("NoRanges", `answered a range with the whole file (200, not 206): it ignores ranges`)
      }
      if (status !== 200 && status !== 206) return yield* fail("Status", `answered ${status} for ${what}`)
      if (status === 206) {
        const range = contentRange.exec(response.headers["content-range"] ?? "")
        if (range === null || Number(range[1]) !== position || Number(range[2]) !== last) {
          return yield* fail("BadRange", `answered ${JSON.stringify(response.headers["content-range"])} for ${what}`)
        }
        if (range[3] !== "*" && Number(range[3]) !== size) {
          return yield* fail("BadRange", `has ${urls[file]} at ${range[3]} bytes; the torrent says ${size}`)
        }
      }
      let at = 0
      yield* Stream.runForEach(response.stream, (chunk) => {
        if (at + chunk.length > target.length) return fail("BadRange", `sent more than the ${what}`)
        target.set(chunk, at)
        at += chunk.length
        return RateLimit.take(limits.download, chunk.length)
      })
      if (at < target.length) return yield* fail("BadRange", `sent ${at} bytes of the ${target.length} of ${what}`)
    }).pipe(
      Effect.catchTag("HttpClientError", (error) => fail("Network", error.message)),
      Effect.timeoutOrElse({
        duration: config.requestTimeoutMillis + (target.length / minRate) * 1000,
        orElse: () => fail("Timeout", `sent ${target.length} bytes of ${urls[file]} slower than ${minRate} bytes/s`)
      })
    )

  /** The bytes of a range, from as many files as it spans (padding files are zeros). */
  const fetch = (range: Range) =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(range.length)
      for (const s of rangeSegments(meta, range.start, range.length)) {
        if (meta.files[s.file]!.padding) continue
        yield* get(s.file, s.position, bytes.subarray(s.offset, s.offset + s.length))
      }
      return bytes
    })

  const session = Effect.gen(function*() {
    const outbox = yield* Queue.unbounded<PeerCommand>()
    const ranges = yield* Queue.unbounded<Range>()
    let served = false
    const offer = (event: PeerEvent) => orchestrator.offer(event)
    const messages = (list: ReadonlyArray<WireMessage>) =>
      offer({ _tag: "Messages", peer: url, messages: list, released: [], depth })

    // Requests become ranges; a Disconnect ends the session. Cancels are let be: the GET may be under
    // way already, and a block that comes after its cancel is dropped by the Orchestrator as unasked.
    const dispatch = Effect.forever(Effect.gen(function*() {
      const requests: Array<BlockRequest> = []
      for (const command of yield* Queue.takeAll(outbox)) {
        if (command._tag === "Request") requests.push(command)
        else if (command._tag === "Disconnect") {
          return yield* new Hangup({ reason: command.reason, detail: command.detail })
        }
      }
      yield* Queue.offerAll(ranges, rangesOf(meta, requests))
    }))
    const worker = Effect.forever(Effect.gen(function*() {
      const range = yield* Queue.take(ranges)
      const bytes = yield* fetch(range)
      served = true
      yield* messages(range.requests.map((r): WireMessage => {
        const at = r.index * meta.pieceLength + r.begin - range.start
        return { _tag: "Piece", index: r.index, begin: r.begin, block: bytes.subarray(at, at + r.length) }
      }))
    }))

    yield* offer({ _tag: "Connected", peer: url, handshake, outbox, outgoing: true })
    yield* messages([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
    const exit = yield* Effect.all([dispatch, ...Array.from({ length: connections }, () => worker)], {
      concurrency: "unbounded",
      discard: true
    }).pipe(
      Effect.onInterrupt(() =>
        offer({ _tag: "Disconnected", peer: url, reason: "Interrupted", detail: "stopped", released: [], uploaded: 0 })
      ),
      Effect.flip,
      Effect.map((error) =>
        error._tag === "Hangup" ? error : { reason: "Failed" as const, detail: error.detail, error }
      )
    )
    // The Orchestrator takes back every request it gave the seed.
    yield* offer({
      _tag: "Disconnected",
      peer: url,
      reason: exit.reason,
      detail: exit.detail,
      released: [],
      uploaded: 0
    })
    return {
      served,
      detail: exit.detail,
      fatal: "error" in exit ? isFatal(exit.error.reason) : true
    }
  })
  return { session }
})
