/**
 * PeerSession: the life of one peer connection.
 *
 * Handshake (with a deadline), then four fibers in the session's scope: the
 * reader (one socket read → one event to the host), the writer (drains the
 * session's outbox into one write per batch, with keep-alives), the uploader
 * (serves the peer's queued requests from disk while we unchoke it) and a
 * once-a-second tick (request timeouts, pipeline size, rates, idle and snub
 * checks). The session talks upward only through its `Host` (a torrent's
 * Orchestrator, disk, limits and peer sources), so the peer layer depends on
 * nothing above it. A host without the torrent's metadata yet (a magnet
 * link's first phase) gets its peers' extended handshakes and ut_metadata
 * messages instead, and its sessions leave piece messages alone. The session
 * handles its own failures: whatever ends it,
 * the host gets one `Disconnected` event with the requests it leaves
 * unanswered, and closing the scope closes the socket.
 */
import { Cause, Clock, Context, Deferred, Effect, Exit, Queue, Result, Schema } from "effect"
import * as Socket from "effect/socket/Socket"
import * as AllowedFast from "../protocol/AllowedFast.ts"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as Frame from "../protocol/Frame.ts"
import * as Handshake from "../protocol/Handshake.ts"
import type * as Hashes from "../protocol/Hashes.ts"
import * as Metadata from "../protocol/Metadata.ts"
import * as Pex from "../protocol/Pex.ts"
import * as WireMessage_ from "../protocol/WireMessage.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"
import { type BlockRequest, blockSize } from "../protocol/Block.ts"
import * as Coordinator from "./Coordinator.ts"
import { encryptionErrorOf } from "./Encryption.ts"
import { Extensions, type Received } from "./Extensions.ts"
import * as FloodGuard from "./FloodGuard.ts"
import type { Address } from "./Network.ts"
import { addressOf, hostOf, type PeerCommand, type PeerEvent, type PeerKey } from "./PeerEvent.ts"
import * as PeerIo from "./PeerIo.ts"
import * as PexRound from "./PexRound.ts"

/** Why we hung up on a peer. */
export const PeerErrorReason = Schema.Literals([
  /** Its handshake was for another torrent, or something came before or instead of it. */
  "HandshakeMismatch",
  /** We dialled ourselves. */
  "SelfConnection",
  "HandshakeTimeout",
  /** It sent nothing for the idle timeout. */
  "Idle",
  /** A message that breaks the protocol (the detail says which). */
  "ProtocolViolation",
  /** Too many messages that change nothing. */
  "Flooded",
  /** Its peer id or address is banned. */
  "Banned",
  /** Useless to us (no metadata to give, requests wasted). */
  "Unhelpful",
  /** The host told the session to hang up (a duplicate, a snub, corrupt data). */
  "Dropped"
])
export type PeerErrorReason = typeof PeerErrorReason.Type

export class PeerError extends Schema.TaggedError<PeerError>()("PeerError", {
  peer: Schema.String,
  reason: PeerErrorReason,
  detail: Schema.String
}) {
  override get message() {
    return `peer ${this.peer}: ${this.detail}`
  }
}

/** A block we were asked for and cannot read (e.g. a file gone from the disk). */
export class BlockUnavailable extends Schema.TaggedError<BlockUnavailable>()("BlockUnavailable", {
  index: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `cannot serve piece ${this.index}: ${this.detail}`
  }
}

/** Peer exchange (BEP 11) as a session sees it: who is in the swarm, and whom peers tell us of. */
export interface Exchange {
  /** A session's peer, reachable at `entry.address`. */
  readonly connected: (peer: PeerKey, entry: PexRound.Entry) => Effect.Effect<void>
  readonly disconnected: (peer: PeerKey) => Effect.Effect<void>
  /** The peers we talk to now, by session. */
  readonly swarm: Effect.Effect<ReadonlyMap<PeerKey, PexRound.Entry>>
  /** Addresses a peer sent us. */
  readonly found: (addresses: Iterable<Address>) => Effect.Effect<void>
}

/** A torrent as its sessions need it. */
export interface Pieces {
  readonly count: number
  /** Piece sizes, to check the peer's requests and blocks. */
  readonly size: (index: number) => number
  /** The info dictionary, served to peers that ask for it (BEP 9). */
  readonly metadata: Uint8Array
  /** v2 (BEP 52): our answer to a hash request (its nodes and uncles), or undefined to reject it. */
  readonly hashes?: ((range: Hashes.HashRange) => Uint8Array | undefined) | undefined
  /** Where a block asked for may be written as it is read, so that it is copied once (see `Frame.Claim`). */
  readonly claim?: Frame.Claim | undefined
}

/**
 * Whatever owns the sessions (a torrent, or a magnet link's metadata phase):
 * the one way a session talks upward, so the peer layer depends on nothing
 * above it. It is resolved once when a session starts.
 */
export class Host extends Context.Service<Host, {
  readonly infoHash: Uint8Array
  /**
   * A hybrid torrent's v2 info-hash truncated (BEP 52): a peer may name the
   * torrent by it instead, and is answered with it.
   */
  readonly infoHashV2?: Uint8Array | undefined
  /** The torrent is v2 or hybrid: our handshake says we speak v2 (BEP 52). */
  readonly v2?: boolean | undefined
  /** The torrent's pieces; undefined until a magnet link's metadata is in. */
  readonly pieces: Pieces | undefined
  /** Whether to refuse a peer at this address now (banned, or its host cooling down). */
  readonly refuses: (peer: PeerKey, now: number) => boolean
  readonly peerId: Uint8Array
  /** Where we listen for peers (told in our extended handshake). */
  readonly port: number
  /** Our IPv6 address when we listen on one (told in our extended handshake, BEP 10 `ipv6`). */
  readonly ipv6?: string | undefined
  readonly handshakeTimeoutMillis: number
  readonly idleTimeoutMillis: number
  readonly keepAliveMillis: number
  readonly requestTimeoutMillis: number
  /** Where the session's events go (its outbox comes with `Connected`). */
  readonly offer: (event: PeerEvent) => Effect.Effect<void>
  /** Our pieces now, as a fresh bitfield the session keeps current from the `Have` commands it sends. */
  readonly bitfield: Effect.Effect<Bitfield.Bitfield>
  /** Copies a block of a piece we have, from `begin`, into all of `into` (to upload). */
  readonly readBlock: (index: number, begin: number, into: Uint8Array) => Effect.Effect<void, BlockUnavailable>
  /** Waits as the download limits require once `bytes` came in. */
  readonly received: (bytes: number) => Effect.Effect<void>
  /** Waits as the upload limits require before `bytes` go out. */
  readonly sending: (bytes: number) => Effect.Effect<void>
  /** Peer exchange, unless the torrent is private. */
  readonly exchange: Exchange | undefined
  /**
   * Our DHT node (BEP 5), told to peers that run one too, unless there is
   * none or the torrent is private; the address peers say is ours (BEP 10
   * `yourip`) is a vote for the one its node id fits (BEP 42).
   */
  readonly dht: {
    readonly port: Effect.Effect<number>
    readonly addNode: (address: Address) => Effect.Effect<void>
    readonly addressSeen: (host: string, by: string) => Effect.Effect<void>
  } | undefined
}>()("effect-torrent/peer/PeerSession/Host") {}

/** Blocks sent that we never asked for (late after a cancel, or hostile) before we hang up. */
const maxUnrequested = 256
/** Requests from a peer we queue (libtorrent allows 2000); beyond this they are rejected (fast extension) or dropped. */
export const maxUploadQueue = 2000
/** Blocks served per write. */
const uploadBatch = 16

/** A connection we dial, or one that came in and whose handshake the listener read. */
export type Connection =
  | {
    readonly _tag: "Outgoing"
    readonly socket: Effect.Effect<Socket.Socket>
    /** The hash our handshake names the torrent by: the host's, or a hybrid's v2 one. */
    readonly infoHash?: Uint8Array | undefined
  }
  | { readonly _tag: "Incoming"; readonly io: PeerIo.PeerIo["Service"]; readonly first: ReadonlyArray<PeerIo.Incoming> }

/**
 * Takes over a connection that came in (its handshake read by the listener)
 * until it ends; false when refused.
 */
export type Accept = (
  peer: PeerKey,
  io: PeerIo.PeerIo["Service"],
  first: ReadonlyArray<PeerIo.Incoming>
) => Effect.Effect<boolean>

/**
 * Longest frame a peer may send: a bitfield of the torrent's pieces, or
 * while they are unknown, of the largest torrent whose metadata we accept
 * (20 bytes of hash per piece).
 */
export const maxFrame = (pieceCount: number | undefined): number =>
  Frame.maxFrameFor(pieceCount ?? Metadata.maxSize / 20)

export interface Options {
  readonly peer: PeerKey
  readonly connection: Connection
  /** Called once the handshake is done (the Monitor counts half-open connections). */
  readonly onHandshake?: Effect.Effect<void>
}

/**
 * How a session ended, for the Monitor's choice of whether and when to dial
 * again: why we hung up, or "Closed" (the peer did, or the connection
 * failed), "Interrupted", "Failed" (something else, e.g. a block we could not read).
 */
export interface Outcome {
  readonly handshaken: boolean
  readonly reason: PeerErrorReason | "Closed" | "Interrupted" | "Failed"
  /** A sentence, for logs. */
  readonly detail: string
}

/**
 * A connection whose handshakes are done, as its fibers see it: built by the
 * per-connection layer in the session's scope, with the connection's PeerIo
 * and Coordinator.
 */
export class PeerSession extends Context.Service<PeerSession, {
  readonly peer: PeerKey
  /** The peer's handshake. */
  readonly handshake: Handshake.Handshake
  /** We dialled the peer. */
  readonly outgoing: boolean
  /** Bytes served to the peer that the host has not heard of yet (a tick reports them, or the end). */
  readonly unreported: { bytes: number }
}>()("effect-torrent/peer/PeerSession") {}

/** What a session leaves its host when it ends, once connected. */
interface Connected {
  readonly coordinator: Coordinator.State
  readonly session: PeerSession["Service"]
}

/** Runs one session to its end; never fails (see the module comment). */
export const run = (
  options: Options
): Effect.Effect<Outcome, never, Host> =>
  Effect.gen(function*() {
    const host = yield* Host
    let connected: Connected | undefined
    const exit = yield* session(options, (c) => (connected = c)).pipe(Effect.scoped, Effect.exit)
    const { reason, detail } = exit._tag === "Success"
      ? { reason: "Closed" as const, detail: "closed" }
      : classify(exit.cause)
    if (connected !== undefined) {
      yield* host.offer({
        _tag: "Disconnected",
        peer: options.peer,
        reason,
        detail,
        released: connected.coordinator.clear(),
        uploaded: connected.session.unreported.bytes
      })
    }
    return { handshaken: connected !== undefined, reason, detail }
  }).pipe(Effect.annotateLogs({ peer: options.peer }))

const classify = (cause: Cause.Cause<unknown>): Omit<Outcome, "handshaken"> => {
  if (Cause.hasInterruptsOnly(cause)) return { reason: "Interrupted", detail: "interrupted" }
  const error = Cause.squash(cause)
  const detail = error instanceof Error ? error.message : String(error)
  if (error instanceof PeerError) return { reason: error.reason, detail }
  if (Schema.is(Handshake.HandshakeError)(error) || Schema.is(WireMessage_.WireError)(error)) {
    return { reason: "ProtocolViolation", detail }
  }
  if (!Socket.isSocketError(error)) return { reason: "Failed", detail }
  // A dial whose encryption handshake failed says why (the socket error only says it did not open).
  return { reason: "Closed", detail: encryptionErrorOf(error)?.message ?? detail }
}

/** What our handshake offers: the fast extension only once there are pieces to speak of. */
const featuresOf = (host: Host["Service"]): ReadonlyArray<Handshake.Feature> => [
  ...(host.pieces === undefined ? [] : ["fast" as const]),
  "extensions",
  ...(host.pieces !== undefined && host.dht !== undefined ? ["dht" as const] : []),
  ...(host.v2 === true ? ["v2" as const] : [])
]

/** The handshake, then the session proper with its connection's services: PeerSession, PeerIo and a Coordinator. */
const session = Effect.fnUntraced(function*(options: Options, expose: (c: Connected) => void) {
  const host = yield* Host
  const fail = (reason: PeerErrorReason, detail: string) => new PeerError({ peer: options.peer, reason, detail })
  const { handshake, io, rest } = yield* open(options.connection, {
    infoHash: host.infoHash,
    infoHashV2: host.infoHashV2,
    peerId: host.peerId,
    features: featuresOf(host),
    maxFrame: maxFrame(host.pieces?.count),
    timeoutMillis: host.handshakeTimeoutMillis
  }, fail)
  // The connection's services as one context, not layers: `Effect.provide`
  // of a layer keeps a memo map and a context per layer for as long as the
  // session runs, some 7 copies of the fiber's service map per peer.
  const connection = Context.make(
    PeerSession,
    PeerSession.of({
      peer: options.peer,
      handshake,
      outgoing: options.connection._tag === "Outgoing",
      unreported: { bytes: 0 }
    })
  ).pipe(
    Context.add(PeerIo.PeerIo, io),
    Context.add(
      Coordinator.Coordinator,
      Coordinator.Coordinator.of(Coordinator.make({ requestTimeoutMillis: host.requestTimeoutMillis }))
    )
  )
  return yield* connected(options, rest, expose).pipe(Effect.provideContext(connection))
})

const connected = Effect.fnUntraced(function*(
  options: Options,
  rest: ReadonlyArray<PeerIo.Incoming>,
  expose: (c: Connected) => void
) {
  const host = yield* Host
  const session = yield* PeerSession
  const io = yield* PeerIo.PeerIo
  const coordinator = yield* Coordinator.Coordinator
  expose({ coordinator, session })
  const { dht, exchange, pieces } = host
  const claim = pieces?.claim
  // Only blocks asked of this peer: others are checked (and refused) by `handle`.
  if (claim !== undefined) {
    io.claimBlocks((index, begin, length) => coordinator.has(index, begin) ? claim(index, begin, length) : undefined)
  }
  const pieceCount = pieces?.count ?? 0
  const { peer, handshake, outgoing, unreported } = session
  const fail = (reason: PeerErrorReason, detail: string) => new PeerError({ peer, reason, detail })
  const violation = (detail: string) => fail("ProtocolViolation", detail)
  const fast = featuresOf(host).includes("fast") && Handshake.supports(handshake, "fast")
  const extensions = new Extensions({
    offer: exchange !== undefined ? ["ut_metadata", "ut_pex"] : ["ut_metadata"],
    metadata: pieces?.metadata,
    port: host.port,
    reqq: maxUploadQueue,
    peerHost: hostOf(peer),
    ipv6: host.ipv6
  })

  if (options.onHandshake !== undefined) yield* options.onHandshake
  const outbox = yield* Queue.unbounded<PeerCommand>()

  /**
   * Our pieces, kept current by the Have commands passing through the writer
   * (the host sends none for pieces the peer has, which it does not ask for).
   */
  const ours = yield* host.bitfield
  /**
   * Pieces the peer may fetch while we choke it (BEP 6), among those we have
   * now; only in torrents large enough that they are a small share of it.
   */
  const allowedFast = new Set(
    fast && pieceCount >= AllowedFast.minPieceCount
      ? AllowedFast.compute(hostOf(peer), host.infoHash, pieceCount).filter((i) => ours.has(i))
      : []
  )
  const opening: Array<WireMessage> = [
    ...(Handshake.supports(handshake, "extensions") ? [extensions.handshake()] : []),
    ...(ours.count() > 0
      ? [
        fast && ours.isComplete() ? { _tag: "HaveAll" as const } : { _tag: "Bitfield" as const, bytes: ours.toBytes() }
      ]
      : fast
      ? [{ _tag: "HaveNone" as const }]
      : []),
    ...[...allowedFast].map((index): WireMessage => ({ _tag: "AllowedFast", index })),
    // BEP 5: where our DHT node listens, to a peer that runs one too.
    ...(dht !== undefined && Handshake.supports(handshake, "dht")
      ? [{ _tag: "Port" as const, port: yield* dht.port }]
      : [])
  ]
  yield* io.send(opening)
  yield* host.offer({
    _tag: "Connected",
    peer,
    handshake,
    outbox,
    outgoing
  })
  /** Where the peer listens, once known: a peer we dialled listens where we reached it; others say so. */
  let listening: Address | undefined = outgoing ? addressOf(peer) : undefined
  /** The peer has every piece or downloads nothing more (BEP 21): told as a seed in PEX. */
  let peerSeeds = false
  /** We download nothing more (the host says when): seeds others tell us of are not for us. */
  let uploadOnly = false
  /** Tells the exchange where the peer listens, and what it is (BEP 11 flags). */
  const advertise = () =>
    exchange === undefined || listening === undefined ? Effect.void : exchange.connected(peer, {
      address: listening,
      flags: (outgoing ? Pex.flags.reachable : 0) | (peerSeeds ? Pex.flags.seed : 0)
    })
  /** Notes that the peer seeds, once. */
  const seeds = () => {
    if (peerSeeds) return Effect.void
    peerSeeds = true
    return advertise()
  }
  yield* advertise()
  if (exchange !== undefined) yield* Effect.addFinalizer(() => exchange.disconnected(peer))

  let lastHeard = yield* Clock.currentTimeMillis
  let unrequested = 0
  let choking = true
  const uploads: Array<BlockRequest> = []
  const uploadsReady = yield* Queue.sliding<void>(1)
  // Not `{ _tag, ...r }`: r is often the peer's Request message, whose own _tag would win.
  const reject = (r: BlockRequest): Array<WireMessage> =>
    fast ? [{ _tag: "RejectRequest", index: r.index, begin: r.begin, length: r.length }] : []

  const inRange = (r: BlockRequest) =>
    r.index < pieceCount && r.length > 0 && r.length <= blockSize && r.begin + r.length <= pieces!.size(r.index)

  /** A valid request: queued if we may serve it (true), else rejected (fast extension) or dropped. */
  const onRequest = (r: BlockRequest, replies: Array<WireMessage>): boolean => {
    if ((choking && !allowedFast.has(r.index)) || !ours.has(r.index) || uploads.length >= maxUploadQueue) {
      replies.push(...reject(r))
      return false
    }
    uploads.push(r)
    Queue.offerUnsafe(uploadsReady, undefined)
    return true
  }

  /** The peer's pieces as it announced them, to tell new haves from repeated ones. */
  let theirs = Bitfield.make(pieceCount)
  /** Whether the peer sent its bitfield, have-all or have-none yet. */
  let announced = false
  const flood = FloodGuard.make()
  let portSeen = false
  // 16 KiB answers to 31-byte requests: a few a second, the rest rejected (a peer needs ≤ 1024 in all).
  const metadataAnswers = FloodGuard.make({ burst: 16, refillPerSecond: 8 })
  const flooded = (m: WireMessage) =>
    fail("Flooded", `flooded us with messages that change nothing (the last a ${m._tag})`)

  /** Done once the peer says it speaks ut_pex. */
  const speaksPex = yield* Deferred.make<void>()

  let lastPexAt = -Infinity
  const onExtension = (r: Received, replies: Array<WireMessage>, now: number): Effect.Effect<void> => {
    switch (r._tag) {
      case "Handshake":
        // Its `reqq` bounds our pipeline; an incoming peer's `p` says where others can reach it.
        if (r.handshake.reqq !== undefined) coordinator.setMaxDepth(Math.min(r.handshake.reqq, 2000))
        if (r.handshake.ids.ut_pex !== undefined) Deferred.doneUnsafe(speaksPex, Exit.void)
        if (pieces === undefined) return host.offer({ _tag: "ExtensionHandshake", peer, handshake: r.handshake })
        if (!outgoing && r.handshake.port !== undefined) listening = { host: hostOf(peer), port: r.handshake.port }
        return Effect.andThen(
          r.handshake.uploadOnly === true ? seeds() : advertise(),
          Effect.andThen(
            r.handshake.uploadOnly === undefined
              ? Effect.void
              : host.offer({ _tag: "PeerUploadOnly", peer, on: r.handshake.uploadOnly }),
            dht === undefined || r.handshake.yourip === undefined
              ? Effect.void
              : dht.addressSeen(r.handshake.yourip, hostOf(peer))
          )
        )
      case "Metadata":
        if (r.message._tag === "Request") {
          replies.push(...extensions.answer(r.message.piece, !metadataAnswers.spend()))
          return Effect.void
        }
        return pieces === undefined ? host.offer({ _tag: "MetadataMessage", peer, message: r.message }) : Effect.void
      case "Pex": {
        // BEP 11: one message a minute; more often, the extra ones are ignored.
        if (exchange === undefined || now - lastPexAt < PexRound.minReceivedMillis) return Effect.void
        lastPexAt = now
        return exchange.found(
          r.message.added.filter(({ flags, port }) => port > 0 && !(uploadOnly && (flags & Pex.flags.seed) !== 0))
            .map(({ host, port }) => ({ host, port }))
        )
      }
      case "Ignored":
        return Effect.void
    }
  }

  /** One read's messages: the Coordinator checks blocks, the host gets the rest. */
  const handle = Effect.fnUntraced(function*(incoming: ReadonlyArray<PeerIo.Incoming>) {
    const now = yield* Clock.currentTimeMillis
    lastHeard = now
    let received = 0
    const messages: Array<WireMessage> = []
    const released: Array<BlockRequest> = []
    const replies: Array<WireMessage> = []
    for (const m of incoming) {
      // Without the metadata, only extension messages mean anything.
      if (pieces === undefined && m._tag !== "Extended" && m._tag !== "Handshake") continue
      // Every message but a new have, a wanted block, and a request or cancel we act on costs a token.
      switch (m._tag) {
        case "Handshake":
          return yield* fail("HandshakeMismatch", "sent a second handshake")
        case "Piece":
          received += m.block.length
          // A block we asked for is in range; only others need the check.
          if (!coordinator.received(m.index, m.begin, m.block.length, now)) {
            if (m.index >= pieceCount || m.begin + m.block.length > pieces!.size(m.index)) {
              return yield* violation(`sent ${m.block.length} bytes at ${m.begin} of piece ${m.index}: out of range`)
            }
            if (coordinator.has(m.index, m.begin)) {
              return yield* violation(
                `sent a ${m.block.length}-byte block at ${m.begin} of piece ${m.index}: not the length asked for`
              )
            }
            if (++unrequested > maxUnrequested) {
              return yield* violation(`sent more than ${maxUnrequested} blocks we never asked for`)
            }
            continue
          }
          break
        case "Request":
          if (!inRange(m)) {
            return yield* violation(`requested ${m.length} bytes at ${m.begin} of piece ${m.index}: out of range`)
          }
          if (!onRequest(m, replies) && !flood.spend()) return yield* flooded(m)
          continue
        case "Extended": {
          if (!flood.spend()) return yield* flooded(m)
          const received = extensions.receive(m.id, m.payload)
          if (Result.isFailure(received)) return yield* violation(received.failure.message)
          yield* onExtension(received.success, replies, now)
          continue
        }
        case "HashRequest": {
          if (!flood.spend()) return yield* flooded(m)
          const { _tag, ...range } = m
          const hashes = pieces!.hashes?.(range)
          replies.push(hashes === undefined ? { ...range, _tag: "HashReject" } : { ...range, _tag: "Hashes", hashes })
          continue
        }
        case "Cancel": {
          const at = uploads.findIndex((r) => r.index === m.index && r.begin === m.begin && r.length === m.length)
          if (at >= 0) uploads.splice(at, 1)
          else if (!flood.spend()) return yield* flooded(m)
          continue
        }
        case "Have":
          if (m.index >= pieceCount) {
            return yield* violation(`has piece ${m.index} of a ${pieceCount}-piece torrent`)
          }
          if (theirs.has(m.index)) {
            if (!flood.spend()) return yield* flooded(m)
            continue
          }
          theirs.set(m.index)
          if (theirs.isComplete()) yield* seeds()
          break
        case "Bitfield":
        case "HaveAll":
        case "HaveNone": {
          if (m._tag !== "Bitfield" && !fast) return yield* violation(`sent ${m._tag} without the fast extension`)
          const next = m._tag === "Bitfield"
            ? Bitfield.fromBytes(m.bytes, pieceCount)
            : Result.succeed(m._tag === "HaveAll" ? Bitfield.full(pieceCount) : Bitfield.make(pieceCount))
          if (Result.isFailure(next)) return yield* violation(next.failure.message)
          // Pieces are never lost: availability that shrinks is a lie.
          const [retracted] = theirs.notIn(next.success, 1)
          if (retracted !== undefined) {
            return yield* violation(`announced piece ${retracted}, then a ${m._tag} without it`)
          }
          const first = !announced
          announced = true
          if (next.success.isComplete()) yield* seeds()
          if (first && theirs.count() === 0) {
            theirs = next.success
            break
          }
          // Later ones (aria2c sends a fresh bitfield instead of haves) reach the
          // host as haves of what they add, so none costs it a pass over every
          // piece; one that adds nothing is a useless message.
          const added = next.success.notIn(theirs)
          if (added.length === 0 && !flood.spend()) return yield* flooded(m)
          for (const index of added) messages.push({ _tag: "Have", index })
          theirs = next.success
          continue
        }
        default: {
          if (!flood.spend()) return yield* flooded(m)
          switch (m._tag) {
            case "KeepAlive":
              continue
            case "Port":
              // One node per peer: later port messages are only spent tokens.
              if (dht !== undefined && !portSeen && m.port > 0) yield* dht.addNode({ host: hostOf(peer), port: m.port })
              portSeen = true
              continue
            case "Choke":
              released.push(...coordinator.clear())
              break
            case "RejectRequest": {
              const request = coordinator.rejected(m.index, m.begin)
              if (request !== undefined) released.push(request)
              continue
            }
            case "Suggest":
            case "AllowedFast":
              if (!fast) return yield* violation(`sent ${m._tag} without the fast extension`)
              break
          }
          break
        }
      }
      messages.push(m)
    }
    yield* io.send(replies)
    if (messages.length > 0 || released.length > 0) {
      yield* host.offer({ _tag: "Messages", peer, messages, released, depth: coordinator.depth })
    }
    yield* host.received(received)
  })

  const reader = Effect.gen(function*() {
    yield* handle(rest)
    while (true) yield* handle(yield* io.read)
  })

  /** When the writer last sent what the host told it to: the ticker sends a keep-alive after `keepAliveMillis` without. */
  let lastCommandAt = lastHeard
  const writer = Effect.gen(function*() {
    while (true) {
      const batch = yield* Queue.takeAll(outbox)
      const now = yield* Clock.currentTimeMillis
      lastCommandAt = now
      const messages: Array<WireMessage> = []
      const requests: Array<BlockRequest> = []
      for (const command of batch) {
        switch (command._tag) {
          case "Disconnect":
            yield* io.send(messages)
            return yield* fail(command.reason, command.detail)
          case "UploadOnly":
            uploadOnly = command.on
            if (Handshake.supports(handshake, "extensions")) messages.push(extensions.handshake(command.on))
            continue
          case "RequestMetadata": {
            const request = extensions.metadataMessage({ _tag: "Request", piece: command.piece })
            if (request !== undefined) messages.push(request)
            continue
          }
          case "Request":
            requests.push(command)
            break
          case "Cancel":
            coordinator.sent(requests.splice(0), now) // a Request earlier in this batch must be known before its Cancel
            coordinator.cancel(command.index, command.begin)
            break
          case "Have":
            ours.set(command.index)
            break
          case "Choke": {
            choking = true
            // Queued requests are rejected, except for allowed-fast pieces (BEP 6).
            const kept = uploads.filter((r) => allowedFast.has(r.index))
            messages.push(...uploads.filter((r) => !allowedFast.has(r.index)).flatMap(reject))
            uploads.splice(0, uploads.length, ...kept)
            break
          }
          case "Unchoke":
            choking = false
            break
        }
        messages.push(command)
      }
      coordinator.sent(requests, now)
      yield* io.send(messages)
    }
  })

  /** Serves queued requests, a few blocks per write; the socket's backpressure paces it. */
  const uploader = Effect.gen(function*() {
    while (true) {
      yield* Queue.take(uploadsReady)
      while (uploads.length > 0) {
        const batch = uploads.splice(0, uploadBatch)
        // The blocks go straight from the disk's cache into the batch: a copy of each in a
        // buffer of its own, held while the socket drains, was promoted and collected again.
        let bytes = 0
        for (const r of batch) bytes += r.length
        const out = new Uint8Array(bytes + batch.length * WireMessage_.pieceHeaderLength)
        let offset = 0
        for (const r of batch) {
          offset = WireMessage_.encodePieceHeader(out, offset, r.index, r.begin, r.length)
          yield* host.readBlock(r.index, r.begin, out.subarray(offset, offset + r.length))
          offset += r.length
        }
        yield* host.sending(bytes)
        yield* io.sendRaw(out)
        unreported.bytes += bytes
      }
    }
  })

  const ticker = Effect.gen(function*() {
    let last = yield* Clock.currentTimeMillis
    while (true) {
      yield* Effect.sleep(1000)
      const now = yield* Clock.currentTimeMillis
      coordinator.tick(now - last)
      flood.refill()
      metadataAnswers.refill()
      last = now
      if (now - lastHeard >= host.idleTimeoutMillis) {
        return yield* fail("Idle", `silent for ${host.idleTimeoutMillis / 1000} s`)
      }
      // Here rather than as a timeout on the writer's every wait: that raced two fibers per batch.
      if (now - lastCommandAt >= host.keepAliveMillis) {
        lastCommandAt = now
        yield* io.send([{ _tag: "KeepAlive" }])
      }
      yield* host.offer({
        _tag: "Tick",
        peer,
        released: coordinator.expire(now),
        depth: coordinator.depth,
        rate: coordinator.rate,
        uploaded: unreported.bytes,
        snubbing: coordinator.isSnubbing(now)
      })
      unreported.bytes = 0
    }
  })

  /** Tells the peer, once it says it speaks ut_pex, of the peers we talk to: as news comes, at most once per interval. */
  const exchanger = (exchange: Exchange) =>
    Effect.gen(function*() {
      yield* Deferred.await(speaksPex)
      const round = new PexRound.Round()
      while (true) {
        const id = extensions.idOf("ut_pex")
        const message = id === undefined ? undefined : round.next(yield* exchange.swarm, peer)
        if (id === undefined || message === undefined) {
          yield* Effect.sleep(PexRound.pollMillis)
          continue
        }
        yield* io.send([{ _tag: "Extended", id, payload: Pex.encode(message) }])
        yield* Effect.sleep(PexRound.intervalMillis)
      }
    })

  // The first of the fibers to end (always by failure) ends the session.
  return yield* Effect.raceFirst(
    Effect.raceFirst(reader, uploader),
    Effect.raceFirst(writer, exchange !== undefined ? Effect.raceFirst(ticker, exchanger(exchange)) : ticker)
  )
})

/**
 * Opens the connection and trades handshakes (ours first when we dial, in
 * answer when the peer did); checks the peer's. A peer that dialled us by
 * `infoHashV2` is answered with it. Returns the messages that came with it.
 */
export const open = Effect.fnUntraced(function*(
  connection: Connection,
  options: {
    readonly infoHash: Uint8Array
    readonly infoHashV2?: Uint8Array | undefined
    readonly peerId: Uint8Array
    readonly features: ReadonlyArray<Handshake.Feature>
    readonly maxFrame: number
    readonly timeoutMillis: number
  },
  fail: (reason: PeerErrorReason, detail: string) => PeerError
) {
  const ours = (infoHash: Uint8Array) =>
    Handshake.encode(Handshake.make({ infoHash, peerId: options.peerId, features: options.features }))
  const { first, io } = connection._tag === "Incoming"
    ? connection
    : yield* Effect.gen(function*() {
      const io = yield* PeerIo.make(yield* connection.socket, { maxFrame: options.maxFrame })
      yield* io.sendRaw(ours(connection.infoHash ?? options.infoHash))
      return { io, first: yield* readHandshake(io, options.timeoutMillis, fail) }
    })
  const handshake = first[0]!
  // Either hash names the torrent, both ways: libtorrent answers a hybrid's
  // v1 handshake that has the v2 bit with the v2 hash.
  const named = handshake._tag !== "Handshake"
    ? undefined
    : Buffer.compare(handshake.infoHash, options.infoHash) === 0
    ? options.infoHash
    : options.infoHashV2 !== undefined && Buffer.compare(handshake.infoHash, options.infoHashV2) === 0
    ? options.infoHashV2
    : undefined
  if (connection._tag === "Incoming") yield* io.sendRaw(ours(named ?? options.infoHash))
  if (handshake._tag !== "Handshake") return yield* fail("HandshakeMismatch", "sent a message before its handshake")
  if (named === undefined) return yield* fail("HandshakeMismatch", "handshake names another torrent")
  if (Buffer.compare(handshake.peerId, options.peerId) === 0) return yield* fail("SelfConnection", "that is us")
  return { io, handshake, rest: first.slice(1) }
})

/** Reads until the peer's handshake (and what came with it) arrives, within the deadline. */
export const readHandshake = (
  io: PeerIo.PeerIo["Service"],
  timeoutMillis: number,
  fail: (reason: PeerErrorReason, detail: string) => PeerError
) =>
  Effect.gen(function*() {
    while (true) {
      const batch = yield* io.read
      if (batch.length > 0) return batch
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () => Effect.fail(fail("HandshakeTimeout", "no handshake in time"))
    })
  )
