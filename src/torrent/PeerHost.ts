/**
 * PeerHost: a torrent as the host of its peer sessions (`PeerSession.Host`).
 * Sessions reach the torrent's Orchestrator, disk, rate limits, peer
 * exchange and the DHT node only through it.
 */
import { Effect, Layer, Option } from "effect"
import { Dht } from "../dht/Dht.ts"
import * as InfoHash from "../protocol/InfoHash.ts"
import * as Hashes from "../protocol/Hashes.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as PeerSession from "../peer/PeerSession.ts"
import { DiskWriter } from "./DiskWriter.ts"
import { Orchestrator } from "./Orchestrator.ts"
import { PeerExchange } from "./PeerExchange.ts"
import * as RateLimit from "./RateLimit.ts"
import { Synchronizer } from "./Synchronizer.ts"
import { TorrentConfig } from "./TorrentConfig.ts"

/** What every host of sessions takes from the settings: our id and port, and the sessions' timeouts. */
export const fromConfig = (config: TorrentConfig["Service"]) => ({
  peerId: config.peerId,
  port: config.port,
  // Our IPv6 address, when we listen on one that is (not every address of the host).
  ipv6: config.listenHost?.includes(":") === true && config.listenHost !== "::" ? config.listenHost : undefined,
  handshakeTimeoutMillis: config.handshakeTimeoutMillis,
  idleTimeoutMillis: config.idleTimeoutMillis,
  keepAliveMillis: config.keepAliveMillis,
  requestTimeoutMillis: config.requestTimeoutMillis
})

/**
 * How a host's torrent is known besides its info-hash: a hybrid's v2
 * info-hash truncated, which a peer may name it by; whether it is v2 at all.
 */
export const aliasOf = (
  torrent: { readonly infoHash: InfoHash.InfoHash; readonly infoHashV2?: InfoHash.InfoHashV2 | undefined }
): Pick<PeerSession.Host["Service"], "infoHashV2" | "v2"> => {
  const alias = InfoHash.swarmHashes(torrent)[1]
  return {
    infoHashV2: alias === undefined ? undefined : InfoHash.toBytes(alias),
    v2: torrent.infoHashV2 !== undefined
  }
}

/**
 * Needs the torrent's Synchronizer, Orchestrator, DiskWriter, RateLimits,
 * PeerExchange and config; the DHT node if provided (public torrents).
 */
export const layer = Layer.effect(
  PeerSession.Host,
  Effect.gen(function*() {
    const config = yield* TorrentConfig
    const orchestrator = yield* Orchestrator
    const disk = yield* DiskWriter
    const limits = yield* RateLimit.RateLimits
    const exchange = yield* PeerExchange
    const sync = yield* Synchronizer
    const { meta } = sync
    const dht = Option.getOrUndefined(yield* Effect.serviceOption(Dht))
    return PeerSession.Host.of({
      infoHash: InfoHash.toBytes(meta.infoHash),
      ...aliasOf(meta),
      pieces: {
        count: meta.pieceCount,
        size: (index) => Metainfo.pieceSize(meta, index),
        metadata: meta.info,
        // From the layers in now: those learned from peers too, not only the .torrent's.
        hashes: (range) => Hashes.answer(orchestrator.meta(), range),
        claim: sync.claim
      },
      refuses: orchestrator.isBanned,
      ...fromConfig(config),
      offer: orchestrator.offer,
      bitfield: orchestrator.bitfield,
      readBlock: (index, begin, into) =>
        disk.readBlock(index, begin, into).pipe(
          Effect.mapError((error) => new PeerSession.BlockUnavailable({ index, detail: error.message }))
        ),
      received: (bytes) => RateLimit.take(limits.download, bytes),
      sending: (bytes) => RateLimit.take(limits.upload, bytes),
      exchange: exchange.enabled ? exchange : undefined,
      dht: dht === undefined ? undefined : { port: dht.port, addNode: dht.addNode, addressSeen: dht.addressSeen }
    })
  })
)
