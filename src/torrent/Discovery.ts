/**
 * Discovery: where a torrent's peers come from, as one Stream. The addresses
 * given (a magnet's `x.pe`, `--peer`) and the trackers always; the public
 * sources (peer exchange, the DHT, local discovery) only for torrents that
 * are not private (BEP 27).
 */
import { Effect, Schedule, Stream } from "effect"
import type { Dht } from "../dht/Dht.ts"
import * as InfoHash from "../protocol/InfoHash.ts"
import type { Address } from "../peer/Network.ts"
import * as Tracker from "../tracker/Tracker.ts"

/** The announces of one swarm: a hybrid torrent is in two, one per hash (BEP 52). */
export interface Swarm {
  readonly tiers: Tracker.Tiers
  readonly params: Effect.Effect<Tracker.AnnounceParams>
}

/**
 * A torrent's swarms: `first` (the tiers it reports on) under its info-hash,
 * and for a hybrid torrent tiers of their own (a tracker's id is per torrent)
 * under its v2 info-hash truncated.
 */
export const swarms = (
  torrent: { readonly infoHash: InfoHash.InfoHash; readonly infoHashV2?: InfoHash.InfoHashV2 | undefined },
  first: Tracker.Tiers,
  announceList: ReadonlyArray<ReadonlyArray<string>>,
  params: Effect.Effect<Tracker.AnnounceParams>
): Effect.Effect<ReadonlyArray<Swarm>> =>
  Effect.forEach(
    InfoHash.swarmHashes(torrent),
    (hash, i) =>
      Effect.map(i === 0 ? Effect.succeed(first) : Tracker.makeTiers(announceList), (tiers): Swarm => ({
        tiers,
        params: i === 0 ? params : Effect.map(params, (p) => ({ ...p, infoHash: InfoHash.toBytes(hash) }))
      }))
  )

/** Tells every swarm's first tracker that answers that we leave. */
export const announceStopped = (swarms: ReadonlyArray<Swarm>) =>
  Effect.forEach(swarms, (s) => Tracker.announceStopped(s.tiers, s.params), { concurrency: "unbounded", discard: true })

/** Tells every swarm's first tracker that answers that the download finished. */
export const announceCompleted = (swarms: ReadonlyArray<Swarm>) =>
  Effect.forEach(swarms, (s) => Tracker.announceCompleted(s.tiers, s.params), {
    concurrency: "unbounded",
    discard: true
  })

export const peers = (options: {
  readonly given: ReadonlyArray<Address>
  readonly swarms: ReadonlyArray<Swarm>
  readonly private: boolean
  /** Sources that private torrents must not use. */
  readonly public: ReadonlyArray<Stream.Stream<Address>>
}): Stream.Stream<Address, never, Tracker.Tracker> =>
  Stream.mergeAll([
    Stream.fromIterable(options.given),
    ...options.swarms.map((s) => Tracker.peers(s.tiers, s.params)),
    ...(options.private ? [] : options.public)
  ], { concurrency: "unbounded" })

/** How often a torrent looks itself up in the DHT and announces itself there (as trackers do, every 15 minutes). */
export const dhtIntervalMillis = 15 * 60 * 1000

/** A torrent's peers from the DHT: a lookup, then our announce (BEP 5), again every interval. */
export const fromDht = (dht: Dht["Service"], infoHash: Uint8Array, port: number): Stream.Stream<Address> =>
  Stream.concat(dht.lookup(infoHash), Stream.fromEffectDrain(dht.announce(infoHash, port))).pipe(
    Stream.repeat(Schedule.spaced(dhtIntervalMillis))
  )
