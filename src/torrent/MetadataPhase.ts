/**
 * MetadataPhase: the first phase of a torrent added by magnet link. It finds
 * peers (the magnet's `x.pe` addresses, any given, its `tr` trackers, the DHT),
 * connects to them (a `Monitor` whose sessions' host is the `MetadataFetcher`),
 * fetches the info dictionary from them and returns the
 * torrent's Metainfo, whose trackers and web seeds are the magnet's. Its
 * sockets close with it; the download then starts afresh from the Metainfo.
 *
 * Whether the torrent is private (BEP 27) is unknown until the metadata is
 * in; nothing here speaks PEX.
 */
import { Context, Effect, Layer, type Scope, type SubscriptionRef, Stream } from "effect"
import * as InfoHash from "../protocol/InfoHash.ts"
import * as Magnet from "../protocol/Magnet.ts"
import * as Metadata from "../protocol/Metadata.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import type { Address } from "../peer/Network.ts"
import * as Tracker from "../tracker/Tracker.ts"
import * as Discovery from "./Discovery.ts"
import { MetadataFetcher } from "./MetadataFetcher.ts"
import { Monitor } from "./Monitor.ts"
import type { Bans } from "./Bans.ts"
import { TorrentError } from "./Torrent.ts"
import { TorrentConfig } from "./TorrentConfig.ts"

/**
 * `left` in our announces while the size is unknown: not 0, which would make
 * us a seed that trackers do not give seeds to (libtorrent sends 16 KiB too).
 */
const unknownLeft = 16 * 1024

export interface Options {
  /** Peers to dial besides the magnet's and the trackers'. */
  readonly peers?: ReadonlyArray<Address> | undefined
  /** Other peer sources (the DHT, local discovery). */
  readonly sources?: ReadonlyArray<Stream.Stream<Address>> | undefined
  /** The torrent's bans: peers that send bad metadata join them. */
  readonly bans: Bans
  /** Called, in the phase's scope, once it runs: for incoming connections and the peer count. */
  readonly onStart?: ((running: Running) => Effect.Effect<void, never, Scope.Scope>) | undefined
}

export interface Running {
  readonly accept: Monitor["Service"]["accept"]
  /** Peers whose handshake is done. */
  readonly peers: SubscriptionRef.SubscriptionRef<number>
}

export const run = (magnet: Magnet.Magnet, options: Options) =>
  Effect.gen(function*() {
    const config = yield* TorrentConfig
    const context = yield* Layer.build(
      Monitor.layer.pipe(Layer.provideMerge(MetadataFetcher.layer({
        infoHash: magnet.infoHash,
        infoHashV2: magnet.infoHashV2,
        bans: options.bans
      })))
    )
    const fetcher = Context.get(context, MetadataFetcher)
    const monitor = Context.get(context, Monitor)
    if (options.onStart !== undefined) yield* options.onStart({ accept: monitor.accept, peers: fetcher.peers })
    const announceList = magnet.trackers.map((url) => [url])
    const tiers = yield* Tracker.makeTiers(announceList)
    const params = Effect.succeed<Tracker.AnnounceParams>({
      infoHash: InfoHash.toBytes(magnet.infoHash),
      peerId: config.peerId,
      port: config.port,
      uploaded: 0,
      downloaded: 0,
      left: unknownLeft,
      numWant: 50
    })
    const swarms = yield* Discovery.swarms(magnet, tiers, announceList, params)
    yield* Effect.addFinalizer(() => Discovery.announceStopped(swarms))
    const given = [...Magnet.peerAddresses(magnet), ...(options.peers ?? [])]
    yield* Discovery.peers({ given, swarms, private: false, public: options.sources ?? [] }).pipe(
      Stream.runForEachArray((addresses) => monitor.add(addresses)),
      Effect.forkScoped
    )
    yield* Effect.logInfo("fetching the metadata from peers")
    const info = yield* Effect.raceFirst(fetcher.info, monitor.run)
    const meta = yield* Effect.fromResult(Metainfo.fromInfoBytes(info, Metadata.maxSize)).pipe(
      Effect.mapError((error) =>
        new TorrentError({ name: magnet.name ?? magnet.infoHash, detail: `the fetched metadata: ${error.message}` })
      )
    )
    // A v1 dictionary whose truncated SHA-256 is the hash, or a v2 one not
    // matching the link's whole v2 hash, is not the torrent asked for. A
    // hybrid one is, by either of its hashes (a `urn:btmh:` link names it by its v2 one).
    if (
      !InfoHash.swarmHashes(meta).includes(magnet.infoHash) ||
      (magnet.infoHashV2 !== undefined && meta.infoHashV2 !== magnet.infoHashV2)
    ) {
      return yield* new TorrentError({
        name: magnet.name ?? magnet.infoHash,
        detail: "the fetched metadata is another torrent's (its v1 and v2 hashes disagree with the link)"
      })
    }
    yield* Effect.logInfo(`metadata of ${meta.name} fetched (${info.length} bytes)`)
    return { ...meta, announce: magnet.trackers.map((url) => [url]), urlList: [...magnet.webSeeds] }
  }).pipe(Effect.scoped, Effect.annotateLogs({ infoHash: magnet.infoHash }))
