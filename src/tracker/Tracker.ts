/**
 * Trackers: the shared request/response shapes, `TrackerError`, the `Tracker`
 * service (one announce to one URL, dispatched on the scheme) and the BEP 12
 * multitracker loop (`makeTiers`, `announces`, `peers`, `announceStopped`,
 * `announceCompleted`).
 *
 * `Tracker.layer` needs the two transports, which `HttpTracker` and
 * `UdpTracker` provide:
 * `Tracker.layer.pipe(Layer.provide([HttpTracker.layerNode, UdpTracker.layerNode]))`.
 * Tests swap either transport for an in-memory one.
 */
import { Context, Duration, Effect, Layer, Random, Result, Schedule, Schema, Stream } from "effect"
import * as CompactPeer from "../protocol/CompactPeer.ts"

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

export const Event = Schema.Literals(["started", "completed", "stopped", "none"])
export type Event = typeof Event.Type

const Bytes20 = Schema.Uint8Array.check(Schema.isBetweenLength(20, 20))

export const AnnounceRequest = Schema.Struct({
  infoHash: Bytes20,
  peerId: Bytes20,
  /** The TCP port we accept peers on. */
  port: Schema.Port,
  uploaded: Schema.Natural,
  downloaded: Schema.Natural,
  left: Schema.Natural,
  event: Event,
  numWant: Schema.Natural,
  /** Lets the tracker recognise us across IP changes (32 bits). */
  key: Schema.optionalKey(Schema.Natural),
  /** Echoed back to an HTTP tracker that sent one. */
  trackerId: Schema.optionalKey(Schema.String)
})
export type AnnounceRequest = typeof AnnounceRequest.Type

/** A peer to connect to: an IPv4 or IPv6 address as text, and a port. */
export const PeerAddress = Schema.Struct({ host: Schema.String, port: Schema.Port })
export type PeerAddress = typeof PeerAddress.Type

export const AnnounceResponse = Schema.Struct({
  /** Seconds until the next regular announce. */
  interval: Schema.Natural,
  minInterval: Schema.optionalKey(Schema.Natural),
  trackerId: Schema.optionalKey(Schema.String),
  peers: Schema.Array(PeerAddress),
  /** Seeders. */
  complete: Schema.optionalKey(Schema.Natural),
  /** Leechers. */
  incomplete: Schema.optionalKey(Schema.Natural),
  warning: Schema.optionalKey(Schema.String)
})
export type AnnounceResponse = typeof AnnounceResponse.Type

/** What a tracker counts for one torrent (BEP 48 scrape; BEP 15 for UDP). */
export const ScrapeResponse = Schema.Struct({
  seeders: Schema.Natural,
  leechers: Schema.Natural,
  /** Completed downloads it has seen. */
  downloaded: Schema.Natural
})
export type ScrapeResponse = typeof ScrapeResponse.Type

// ---------------------------------------------------------------------------
// Errors: one `TrackerError` whose `reason` says what went wrong. Each reason's
// message is a verb phrase that follows "tracker <url> ".
// ---------------------------------------------------------------------------

export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", { seconds: Schema.Number }) {
  override get message() {
    return `did not answer within ${this.seconds} seconds`
  }
}

/** The tracker refused the announce and said why ("failure reason", UDP action 3). */
export class Failure extends Schema.TaggedError<Failure>()("Failure", { text: Schema.String }) {
  override get message() {
    return `refused the announce: ${this.text}`
  }
}

export class BadResponse extends Schema.TaggedError<BadResponse>()("BadResponse", { problem: Schema.String }) {
  override get message() {
    return `sent a malformed response: ${this.problem}`
  }
}

export class Network extends Schema.TaggedError<Network>()("Network", { cause: Schema.Defect() }) {
  override get message() {
    // The innermost cause: an HTTP client's "Transport error (GET <the whole announce URL>)" wraps what happened.
    let cause = this.cause
    while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause
    return `could not be reached: ${cause instanceof Error ? cause.message : String(cause)}`
  }
}

/** Unparseable URLs and schemes we do not speak (e.g. wss://). */
export class UnsupportedUrl extends Schema.TaggedError<UnsupportedUrl>()("UnsupportedUrl", {
  problem: Schema.String
}) {
  override get message() {
    return `cannot be used: ${this.problem}`
  }
}

export const TrackerErrorReason = Schema.Union([Timeout, Failure, BadResponse, Network, UnsupportedUrl])
export type TrackerErrorReason = typeof TrackerErrorReason.Type

export class TrackerError extends Schema.TaggedError<TrackerError>()("TrackerError", {
  url: Schema.String,
  reason: TrackerErrorReason
}) {
  override get message() {
    return `tracker ${this.url} ${this.reason.message}`
  }
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

/** One announce, or one scrape of one torrent, over one protocol. */
export interface Transport {
  readonly announce: (url: URL, request: AnnounceRequest) => Effect.Effect<AnnounceResponse, TrackerError>
  /** `url` is the announce URL (an HTTP transport derives the scrape URL from it). */
  readonly scrape: (url: URL, infoHash: Uint8Array) => Effect.Effect<ScrapeResponse, TrackerError>
}

/** http:// and https:// trackers; `HttpTracker.layer` provides it. */
export class HttpTransport
  extends Context.Service<HttpTransport, Transport>()("effect-torrent/tracker/HttpTransport")
{}

/** udp:// trackers; `UdpTracker.layerWith` provides it. */
export class UdpTransport extends Context.Service<UdpTransport, Transport>()("effect-torrent/tracker/UdpTransport") {}

export class Tracker extends Context.Service<Tracker, {
  readonly announce: (url: string, request: AnnounceRequest) => Effect.Effect<AnnounceResponse, TrackerError>
  /** What the tracker at announce URL `url` counts for the torrent (BEP 48). */
  readonly scrape: (url: string, infoHash: Uint8Array) => Effect.Effect<ScrapeResponse, TrackerError>
}>()("effect-torrent/tracker/Tracker") {
  static readonly layer = Layer.effect(
    Tracker,
    Effect.gen(function*() {
      const http = yield* HttpTransport
      const udp = yield* UdpTransport
      /** The transport for the URL's scheme. */
      const transportOf = (url: string): Result.Result<readonly [Transport, URL], TrackerError> => {
        const unsupported = (problem: string) =>
          Result.fail(new TrackerError({ url, reason: new UnsupportedUrl({ problem }) }))
        const parsed = URL.canParse(url) ? new URL(url) : undefined
        if (parsed === undefined) return unsupported("it is not a URL")
        switch (parsed.protocol) {
          case "http:":
          case "https:":
            return Result.succeed([http, parsed])
          case "udp:":
            return Result.succeed([udp, parsed])
          default:
            return unsupported(`the scheme ${parsed.protocol} is not supported`)
        }
      }
      const announce = Effect.fn("Tracker.announce")(function*(url: string, request: AnnounceRequest) {
        const [transport, parsed] = yield* Effect.fromResult(transportOf(url))
        return yield* transport.announce(parsed, request)
      })
      const scrape = Effect.fn("Tracker.scrape")(function*(url: string, infoHash: Uint8Array) {
        const [transport, parsed] = yield* Effect.fromResult(transportOf(url))
        return yield* transport.scrape(parsed, infoHash)
      })
      return Tracker.of({ announce, scrape })
    })
  )
}

// ---------------------------------------------------------------------------
// Multitracker (BEP 12)
// ---------------------------------------------------------------------------

/**
 * A torrent's announce-list with each tier shuffled once. A tracker that
 * answers moves to the front of its tier, so later announces try it first.
 * Shared by `announces` and the event announces of one torrent.
 */
export class Tiers {
  /** Why the last announce failed at every tracker; undefined once one answers (or before the first). */
  failure: string | undefined = undefined
  /** Told of each periodic announce's outcome (the torrent's event stream). */
  onAnnounce: (outcome: AnnounceOutcome) => Effect.Effect<void> = () => Effect.void

  constructor(
    readonly tiers: ReadonlyArray<Array<string>>,
    /** "tracker id" values to echo, by URL. */
    readonly trackerIds: Map<string, string> = new Map()
  ) {}

  get status(): Status {
    return this.tiers.length === 0 ? "none" : this.failure === undefined ? "working" : "failing"
  }
}

/** A periodic announce: answered with so many peers, or failed at every tracker. */
export type AnnounceOutcome =
  | { readonly _tag: "Answered"; readonly peers: number }
  | { readonly _tag: "Failed"; readonly error: string }

/** How a torrent's trackers fare: it has none; one answered (or none was asked yet); every one failed the last announce. */
export const Status = Schema.Literals(["none", "working", "failing"])
export type Status = typeof Status.Type

export const makeTiers = (announceList: ReadonlyArray<ReadonlyArray<string>>): Effect.Effect<Tiers> =>
  Effect.map(
    Effect.forEach(announceList.filter((tier) => tier.length > 0), Random.shuffle),
    (tiers) => new Tiers(tiers)
  )

/** What the caller knows of a request; the loop adds `event` and `trackerId`. */
export type AnnounceParams = Omit<AnnounceRequest, "event" | "trackerId">

/** A tracker that says 0 must not make us spin. */
const minimumInterval = 30
/** Backoff when every tracker failed: 15 s, 30 s, 60 s, … at most 30 minutes. */
const backoff = Schedule.min([Schedule.exponential("15 seconds"), Schedule.spaced("30 minutes")])
/** `stopped` and `completed` are courtesy messages; do not hold up the caller. */
const eventTimeout = Duration.seconds(30)

/** Announces to the first tracker that answers, tier by tier (BEP 12). */
const announceTiers = (
  tracker: Tracker["Service"],
  tiers: Tiers,
  params: Effect.Effect<AnnounceParams>,
  event: Event
): Effect.Effect<AnnounceResponse, TrackerError> =>
  Effect.flatMap(params, (current) =>
    Effect.firstSuccessOf(tiers.tiers.flatMap((tier) =>
      tier.map((url) => {
        const trackerId = tiers.trackerIds.get(url)
        return tracker.announce(url, { ...current, event, ...(trackerId === undefined ? {} : { trackerId }) }).pipe(
          Effect.tap((response) =>
            Effect.sync(() => {
              tier.splice(tier.indexOf(url), 1)
              tier.unshift(url)
              if (response.trackerId !== undefined) tiers.trackerIds.set(url, response.trackerId)
            })
          ),
          Effect.tapError((error) => Effect.logDebug(error.message))
        )
      })
    )))

const isEmpty = (tiers: Tiers) => tiers.tiers.length === 0

/**
 * Announces `started`, then re-announces on the tracker's interval (never
 * sooner than its min interval), emitting every response. When all trackers
 * fail it retries with backoff, so the stream ends only when interrupted.
 * `params` is read before each announce, for current upload/download/left.
 * A failure is logged when it starts or its reason changes, not at every
 * retry: a dead tracker is one warning, not one every few minutes.
 */
export const announces = (
  tiers: Tiers,
  params: Effect.Effect<AnnounceParams>
): Stream.Stream<AnnounceResponse, never, Tracker> =>
  isEmpty(tiers) ? Stream.empty : Stream.unwrap(Tracker.useSync((tracker) => {
    const announce = (event: Event) =>
      announceTiers(tracker, tiers, params, event).pipe(
        Effect.tapError((error) => {
          const repeated = tiers.failure === error.message
          tiers.failure = error.message
          return Effect.andThen(
            tiers.onAnnounce({ _tag: "Failed", error: error.message }),
            repeated ? Effect.void : Effect.logWarning(`no tracker answers; the last: ${error.message}`)
          )
        }),
        Effect.retry(backoff),
        Effect.tap(() => {
          const recovered = tiers.failure !== undefined
          tiers.failure = undefined
          return recovered ? Effect.logInfo("a tracker answers again") : Effect.void
        }),
        Effect.orDie, // the backoff never ends
        Effect.tap((response) =>
          Effect.andThen(
            tiers.onAnnounce({ _tag: "Answered", peers: response.peers.length }),
            response.warning === undefined ? Effect.void : Effect.logWarning(`tracker warning: ${response.warning}`)
          )
        )
      )
    return Stream.unfold(
      { event: "started" as Event, delay: Duration.zero },
      ({ delay, event }) =>
        Effect.sleep(delay).pipe(
          Effect.andThen(announce(event)),
          Effect.map((response) => [response, { event: "none" as Event, delay: nextAnnounce(response) }] as const)
        )
    )
  }))

/** The peers from `announces`. */
export const peers = (
  tiers: Tiers,
  params: Effect.Effect<AnnounceParams>
): Stream.Stream<PeerAddress, never, Tracker> =>
  Stream.flatMap(announces(tiers, params), (response) => Stream.fromIterable(response.peers))

const announceEvent =
  (event: "stopped" | "completed") =>
  (tiers: Tiers, params: Effect.Effect<AnnounceParams>): Effect.Effect<void, never, Tracker> =>
    isEmpty(tiers) ? Effect.void : Tracker.use((tracker) => announceTiers(tracker, tiers, params, event)).pipe(
      Effect.timeout(eventTimeout),
      // Not again for a failure `announces` has reported already.
      Effect.catch((error) =>
        tiers.failure === error.message
          ? Effect.void
          : Effect.logWarning(`announcing ${event} failed: ${error.message}`)
      ),
      Effect.asVoid
    )

/** Tells the first tracker that answers that we are leaving. Bounded; failures are logged. */
export const announceStopped = announceEvent("stopped")

/** Tells the first tracker that answers that the download finished. Bounded; failures are logged. */
export const announceCompleted = announceEvent("completed")

const nextAnnounce = (response: AnnounceResponse): Duration.Duration =>
  Duration.seconds(Math.max(response.interval, response.minInterval ?? 0, minimumInterval))

// ---------------------------------------------------------------------------
// Helpers for the transports
// ---------------------------------------------------------------------------

/** Wraps a transport's failures in a `TrackerError` naming the URL. */
export const withUrl = <A, R>(effect: Effect.Effect<A, TrackerErrorReason, R>, url: URL) =>
  Effect.mapError(effect, (reason) => new TrackerError({ url: url.href, reason }))

/**
 * Most peers taken from one announce: more than a torrent dials or remembers
 * (the Monitor keeps 2000 addresses), and a hostile tracker's list of
 * hundreds of thousands costs no memory beyond it.
 */
export const maxPeersPerAnnounce = 2000

/** BEP 23 compact peers (6 bytes each) or BEP 7 compact IPv6 peers (18 bytes each), the first `limit` of them. */
export const compactPeers = (
  bytes: Uint8Array,
  size: 6 | 18,
  limit = maxPeersPerAnnounce
): Result.Result<Array<PeerAddress>, BadResponse> =>
  Result.mapError(CompactPeer.decodeList(bytes, size, limit), (problem) => new BadResponse({ problem }))
