/**
 * MetadataFetcher: a magnet link's metadata phase as the host of its peer
 * sessions (`PeerSession.Host`), to get the info dictionary over ut_metadata
 * (BEP 9) before there is a torrent to download.
 *
 * The Monitor dials and accepts peers as for a download; their sessions,
 * knowing no pieces yet, bring this host only the peers' extended handshakes
 * and ut_metadata messages, and send it a tick a second. It asks each peer
 * for the pieces a `MetadataAssembly` gives it. Peers that send bad data are
 * banned (with the torrent's bans, so the download does not dial them
 * either) and hung up on; the others carry on. A peer that wastes our
 * requests (rejects them, or lets them expire) is hung up on too, and
 * dialled again later like any peer whose session ended.
 */
import { Clock, Context, Deferred, Effect, Layer, Queue, SubscriptionRef } from "effect"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as InfoHash from "../protocol/InfoHash.ts"
import type * as Metadata from "../protocol/Metadata.ts"
import type { PeerCommand, PeerEvent, PeerKey } from "../peer/PeerEvent.ts"
import * as PeerSession from "../peer/PeerSession.ts"
import type { Bans } from "./Bans.ts"
import { MetadataAssembly } from "./MetadataAssembly.ts"
import * as PeerHost from "./PeerHost.ts"
import { TorrentConfig } from "./TorrentConfig.ts"
import { TorrentEvents, warn } from "./TorrentEvents.ts"

/**
 * Requests a peer may reject or let expire before it is hung up on: both of
 * its requests late once is forgiven, a second time is not; a peer that
 * rejects everything goes at its third reject.
 */
export const maxWasted = 3

interface Peer {
  readonly id: string
  readonly outbox: Queue.Queue<PeerCommand>
  wasted: number
  /** Told to hang up: what it still sends is ignored. */
  dropped: boolean
  banned: boolean
}

export class MetadataFetcher extends Context.Service<MetadataFetcher, {
  /** Peers whose handshake is done. */
  readonly peers: SubscriptionRef.SubscriptionRef<number>
  /** The info dictionary's bytes, once verified against the info-hash. */
  readonly info: Effect.Effect<Uint8Array>
}>()("effect-torrent/torrent/MetadataFetcher") {
  /** The fetcher and, over it, the host of the phase's sessions. */
  static readonly layer = (options: Options) =>
    Layer.effectContext(
      Effect.map(
        make(options),
        ({ fetcher, host }) => Context.make(MetadataFetcher, fetcher).pipe(Context.add(PeerSession.Host, host))
      )
    )
}

/** The torrent's hashes (a magnet link's: a v2 one's makes our handshake say we speak v2) and its bans. */
interface Options {
  readonly infoHash: InfoHash.InfoHash
  readonly infoHashV2?: InfoHash.InfoHashV2 | undefined
  readonly bans: Bans
}

const make = Effect.fnUntraced(function*(options: Options) {
  const config = yield* TorrentConfig
  const events = yield* TorrentEvents
  const { bans } = options
  const assembly = new MetadataAssembly(options.infoHash)
  const done = yield* Deferred.make<Uint8Array>()
  const count = yield* SubscriptionRef.make(0)
  const peers = new Map<PeerKey, Peer>()

  const send = (peer: Peer, commands: ReadonlyArray<PeerCommand>) =>
    peer.dropped || commands.length === 0 ? Effect.void : Queue.offerAll(peer.outbox, commands)

  const drop = (peer: Peer, reason: PeerSession.PeerErrorReason, detail: string) =>
    Effect.suspend(() => {
      if (peer.dropped) return Effect.void
      const sent = send(peer, [{ _tag: "Disconnect", reason, detail }])
      peer.dropped = true
      return sent
    })

  /** Bad data: the peer is banned, then hung up on. */
  const condemn = (key: PeerKey, peer: Peer, detail: string) =>
    Effect.gen(function*() {
      bans.ban(key, peer.id, yield* Clock.currentTimeMillis)
      peer.banned = true
      yield* drop(peer, "ProtocolViolation", detail)
    })

  const waste = (peer: Peer, wasted: number) =>
    Effect.suspend(() =>
      (peer.wasted += wasted) >= maxWasted
        ? drop(peer, "Unhelpful", `rejected or let expire ${peer.wasted} metadata requests`)
        : Effect.void
    )

  /** Asks the peer for the pieces it may fetch now. */
  const ask = (key: PeerKey, peer: Peer, now: number) =>
    send(peer, assembly.next(key, now).map((piece) => ({ _tag: "RequestMetadata", piece })))

  const onMetadata = Effect.fnUntraced(function*(key: PeerKey, peer: Peer, message: Metadata.MetadataMessage) {
    const now = yield* Clock.currentTimeMillis
    switch (message._tag) {
      case "Request":
        return // the session answered it
      case "Reject":
        // The piece goes to whoever asks first; this peer is asked again at its next tick at the earliest.
        assembly.rejected(key, message.piece)
        return yield* waste(peer, 1)
      case "Data": {
        const verdict = assembly.received(key, message.piece, message.totalSize, message.block)
        switch (verdict._tag) {
          case "Bad":
            return yield* condemn(key, peer, verdict.reason)
          case "Done":
            return yield* Deferred.succeed(done, verdict.info)
          case "HashMismatch":
            yield* warn(
              events,
              `the metadata did not match the info-hash${
                verdict.culprit === undefined ? "" : `; all of it came from ${verdict.culprit}`
              }`
            )
            if (verdict.culprit === key) {
              return yield* condemn(key, peer, "sent metadata that does not match the info-hash")
            }
            return yield* ask(key, peer, now)
          case "Ok":
            return yield* ask(key, peer, now)
        }
      }
    }
  })

  const offer = Effect.fnUntraced(function*(event: PeerEvent) {
    if (event._tag === "Connected") {
      const id = Buffer.from(event.handshake.peerId).toString("latin1")
      const peer: Peer = { id, outbox: event.outbox, wasted: 0, dropped: false, banned: false }
      if (bans.hasId(id)) return yield* drop(peer, "Banned", "banned")
      peers.set(event.peer, peer)
      return yield* SubscriptionRef.update(count, (n) => n + 1)
    }
    const peer = peers.get(event.peer)
    if (peer === undefined) return
    if (event._tag === "Disconnected") {
      peers.delete(event.peer)
      assembly.left(event.peer, peer.banned)
      return yield* SubscriptionRef.update(count, (n) => n - 1)
    }
    if (peer.dropped) return
    switch (event._tag) {
      case "ExtensionHandshake": {
        const { handshake } = event
        if (handshake.ids.ut_metadata === undefined) return yield* drop(peer, "Unhelpful", "does not offer ut_metadata")
        if (handshake.metadataSize === undefined) {
          return yield* drop(peer, "Unhelpful", "has no metadata_size: it has no metadata")
        }
        const problem = assembly.claim(event.peer, handshake.metadataSize)
        if (problem !== undefined) return yield* condemn(event.peer, peer, problem)
        return yield* ask(event.peer, peer, yield* Clock.currentTimeMillis)
      }
      case "MetadataMessage":
        return yield* onMetadata(event.peer, peer, event.message)
      case "Tick": {
        const now = yield* Clock.currentTimeMillis
        yield* waste(peer, assembly.expire(event.peer, now))
        return yield* ask(event.peer, peer, now)
      }
      case "Messages":
        return // no pieces yet: the sessions pass no piece messages up
    }
  })

  const host = PeerSession.Host.of({
    infoHash: InfoHash.toBytes(options.infoHash),
    ...PeerHost.aliasOf(options),
    pieces: undefined,
    refuses: (peer, now) => bans.refuses(peer, now),
    ...PeerHost.fromConfig(config),
    offer,
    bitfield: Effect.sync(() => Bitfield.make(0)),
    readBlock: (index) => Effect.fail(new PeerSession.BlockUnavailable({ index, detail: "no metadata yet" })),
    received: () => Effect.void,
    sending: () => Effect.void,
    exchange: undefined,
    dht: undefined
  })
  return { fetcher: MetadataFetcher.of({ peers: count, info: Deferred.await(done) }), host }
})
