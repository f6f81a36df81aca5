/**
 * MetadataFetcher: gets a magnet link's info dictionary from its peers over
 * ut_metadata (BEP 9), before there is a torrent to download.
 *
 * It dials the addresses it is given (and takes over incoming connections
 * naming the info-hash), up to `maxPeers` sessions, each a fiber in a
 * FiberMap closed with the fetcher's scope. A session trades handshakes,
 * sends our extended handshake (ut_metadata only, no metadata of our own:
 * we `reject` requests), and asks the pieces a `MetadataAssembly` gives it.
 * Peers that send bad data are banned (with the torrent's bans, so the
 * download does not dial them either) and hung up on; the others carry on.
 * A peer that wastes our requests (rejects them, or lets them expire) is
 * hung up on too, and dialled again later like any peer whose session ended.
 */
import { Clock, Deferred, Effect, Fiber, FiberMap, Queue, Result, type Scope, SubscriptionRef } from "effect"
import * as Frame from "../protocol/Frame.ts"
import * as InfoHash from "../protocol/InfoHash.ts"
import * as Metadata from "../protocol/Metadata.ts"
import type { WireMessage } from "../protocol/WireMessage.ts"
import { Extensions } from "../peer/Extensions.ts"
import { Admission } from "../peer/Admission.ts"
import { type Address, Network } from "../peer/Network.ts"
import { hostOf, keyOf, type PeerKey } from "../peer/PeerEvent.ts"
import type * as PeerIo from "../peer/PeerIo.ts"
import * as PeerSession from "../peer/PeerSession.ts"
import { MetadataAssembly } from "./MetadataAssembly.ts"
import type { Bans } from "./Bans.ts"
import { TorrentConfig } from "./TorrentConfig.ts"

/** Wait before dialling an address again after its session ended. */
const redialMillis = 30_000
/** Most addresses remembered. */
const maxCandidates = 2000
/**
 * How often a session checks its peer: the resolution of the request and
 * idle timeouts, and how soon a peer with room is given pieces others freed.
 */
const tickMillis = 1000
/**
 * Requests a peer may reject or let expire before it is hung up on: both of
 * its requests late once is forgiven, a second time is not; a peer that
 * rejects everything goes at its third reject.
 */
export const maxWasted = 3
/**
 * Frame limit while the torrent's size is unknown: a bitfield may be that of
 * the largest torrent whose metadata we accept (20 bytes of hash per piece).
 */
export const maxFrame = Frame.maxFrameFor(Metadata.maxSize / 20)

export interface MetadataFetcher {
  /** New addresses to try. */
  readonly add: (addresses: Iterable<Address>) => Effect.Effect<void>
  readonly accept: PeerSession.Accept
  /** Peers whose handshake is done. */
  readonly peers: SubscriptionRef.SubscriptionRef<number>
  /** Dials and fetches until the metadata is verified; returns the info dictionary's bytes. */
  readonly run: Effect.Effect<Uint8Array>
}

export const make = Effect.fnUntraced(function*(
  options: { readonly infoHash: InfoHash.InfoHash; readonly bans: Bans }
): Effect.fn.Return<MetadataFetcher, never, TorrentConfig | Network | Scope.Scope> {
  const config = yield* TorrentConfig
  const admission = yield* Admission
  const network = yield* Network
  const infoHash = InfoHash.toBytes(options.infoHash)
  const assembly = new MetadataAssembly(options.infoHash)
  const done = yield* Deferred.make<Uint8Array>()
  const peers = yield* SubscriptionRef.make(0)
  const sessions = yield* FiberMap.make<PeerKey, void, never>()
  const candidates = new Map<PeerKey, { readonly address: Address; retryAt: number }>()
  const wake = yield* Queue.sliding<void>(1)
  const isBanned = (peer: PeerKey, now: number) => options.bans.refuses(peer, now)

  const ban = (peer: PeerKey, id: string) =>
    Effect.map(Clock.currentTimeMillis, (now) => options.bans.ban(peer, id, now))

  const session = Effect.fnUntraced(function*(peer: PeerKey, connection: PeerSession.Connection) {
    const fail = (reason: PeerSession.PeerErrorReason, detail: string) =>
      new PeerSession.PeerError({ peer, reason, detail })
    const { handshake, io, rest } = yield* PeerSession.open(connection, {
      infoHash,
      peerId: config.peerId,
      features: ["extensions"],
      maxFrame,
      timeoutMillis: config.handshakeTimeoutMillis
    }, fail)
    const id = Buffer.from(handshake.peerId).toString("latin1")
    if (options.bans.hasId(id)) return yield* fail("Banned", "banned")
    const extensions = new Extensions({
      offer: ["ut_metadata"],
      metadata: undefined,
      port: config.port,
      reqq: PeerSession.maxUploadQueue,
      peerHost: hostOf(peer)
    })
    yield* io.send([extensions.handshake()])
    yield* SubscriptionRef.update(peers, (n) => n + 1)
    yield* Effect.addFinalizer(() => SubscriptionRef.update(peers, (n) => n - 1))
    let banned = false
    yield* Effect.addFinalizer(() => Effect.sync(() => assembly.left(peer, banned)))
    const condemn = (reason: string) =>
      Effect.andThen(
        ban(peer, id),
        Effect.suspend(() => {
          banned = true
          return Effect.fail(fail("ProtocolViolation", reason))
        })
      )
    let lastHeard = yield* Clock.currentTimeMillis
    let wasted = 0
    const waste = (count: number) =>
      Effect.suspend(() =>
        (wasted += count) >= maxWasted
          ? Effect.fail(fail("Unhelpful", `rejected or let expire ${wasted} metadata requests`))
          : Effect.void
      )

    const requests = (now: number): Array<WireMessage> =>
      assembly.next(peer, now).flatMap((piece) => extensions.metadataMessage({ _tag: "Request", piece }) ?? [])

    const handle = Effect.fnUntraced(function*(incoming: ReadonlyArray<PeerIo.Incoming>) {
      const now = yield* Clock.currentTimeMillis
      lastHeard = now
      const replies: Array<WireMessage> = []
      for (const m of incoming) {
        if (m._tag === "Handshake") return yield* fail("HandshakeMismatch", "sent a second handshake")
        if (m._tag !== "Extended") continue // we have no pieces and want none yet
        const received = extensions.receive(m.id, m.payload)
        if (Result.isFailure(received)) return yield* fail("ProtocolViolation", received.failure.message)
        const r = received.success
        if (r._tag === "Handshake") {
          if (r.handshake.ids.ut_metadata === undefined) return yield* fail("Unhelpful", "does not offer ut_metadata")
          if (r.handshake.metadataSize === undefined) {
            return yield* fail("Unhelpful", "has no metadata_size: it has no metadata")
          }
          const problem = assembly.claim(peer, r.handshake.metadataSize)
          if (problem !== undefined) return yield* condemn(problem)
          replies.push(...requests(now))
          continue
        }
        if (r._tag !== "Metadata") continue
        const message = r.message
        switch (message._tag) {
          case "Request":
            replies.push(...extensions.answer(message.piece))
            break
          case "Reject":
            // The piece goes to whoever asks first; this peer is asked again at its next tick at the earliest.
            assembly.rejected(peer, message.piece)
            yield* waste(1)
            break
          case "Data": {
            const verdict = assembly.received(peer, message.piece, message.totalSize, message.block)
            switch (verdict._tag) {
              case "Bad":
                return yield* condemn(verdict.reason)
              case "Done":
                yield* Deferred.succeed(done, verdict.info)
                return yield* Effect.never
              case "HashMismatch":
                yield* Effect.logWarning(
                  `the metadata did not match the info-hash${
                    verdict.culprit === undefined ? "" : `; all of it came from ${verdict.culprit}`
                  }`
                )
                if (verdict.culprit === peer) return yield* condemn("sent metadata that does not match the info-hash")
                replies.push(...requests(now))
                break
              case "Ok":
                replies.push(...requests(now))
            }
          }
        }
      }
      yield* io.send(replies)
    })

    const reader = Effect.gen(function*() {
      yield* handle(rest)
      while (true) yield* handle(yield* io.read)
    })

    const ticker = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(tickMillis)
        const now = yield* Clock.currentTimeMillis
        if (now - lastHeard >= config.idleTimeoutMillis) {
          return yield* fail("Idle", `silent for ${config.idleTimeoutMillis / 1000} s`)
        }
        yield* waste(assembly.expire(peer, now))
        yield* io.send(requests(now))
      }
    })

    return yield* Effect.raceFirst(reader, ticker)
  })

  /** Runs a session to its end; it handles its own failures. */
  const runSession = (peer: PeerKey, connection: PeerSession.Connection) =>
    session(peer, connection).pipe(
      Effect.scoped,
      Effect.catchCause((cause) => Effect.logDebug("metadata session ended", cause)),
      Effect.annotateLogs({ peer })
    )

  const ended = (key: PeerKey) =>
    Effect.gen(function*() {
      const candidate = candidates.get(key)
      if (candidate !== undefined) candidate.retryAt = (yield* Clock.currentTimeMillis) + redialMillis
      yield* Queue.offer(wake, undefined)
    })

  const fill = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let open = yield* FiberMap.size(sessions)
    for (const [key, candidate] of candidates) {
      if (open >= config.maxPeers) return
      if (candidate.retryAt > now || isBanned(key, now) || (yield* FiberMap.has(sessions, key))) continue
      if (!admission.admitOutgoing()) return // every connection slot of the process is taken
      candidate.retryAt = Infinity // until the session ends
      const connection: PeerSession.Connection = {
        _tag: "Outgoing",
        socket: network.connect(candidate.address, config.connectTimeoutMillis)
      }
      const released = Effect.sync(() => admission.release())
      yield* FiberMap.run(
        sessions,
        key,
        runSession(key, connection).pipe(Effect.ensuring(Effect.andThen(released, ended(key)))),
        {
          onlyIfMissing: true
        }
      )
      open++
    }
  })

  const add = (addresses: Iterable<Address>) =>
    Effect.gen(function*() {
      for (const address of addresses) {
        const key = keyOf(address)
        if (!candidates.has(key) && candidates.size < maxCandidates) candidates.set(key, { address, retryAt: 0 })
      }
      yield* Queue.offer(wake, undefined)
    })

  const accept = Effect.fnUntraced(function*(
    peer: PeerKey,
    io: PeerIo.PeerIo["Service"],
    first: ReadonlyArray<PeerIo.Incoming>
  ) {
    if (
      (yield* FiberMap.size(sessions)) >= config.maxPeers || isBanned(peer, yield* Clock.currentTimeMillis) ||
      (yield* FiberMap.has(sessions, peer))
    ) {
      return false
    }
    yield* FiberMap.run(sessions, peer, runSession(peer, { _tag: "Incoming", io, first }), { onlyIfMissing: true })
      .pipe(
        Effect.flatMap(Fiber.await)
      )
    return true
  })

  const dialer = Effect.gen(function*() {
    while (true) {
      yield* fill
      yield* Queue.take(wake).pipe(Effect.timeoutOption(1000))
    }
  })

  const run = Effect.raceFirst(Deferred.await(done), dialer).pipe(Effect.ensuring(FiberMap.clear(sessions)))

  return { add, accept, peers, run }
})
