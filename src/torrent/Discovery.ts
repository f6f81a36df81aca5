/**
 * Discovery: where a torrent's peers come from, as one Stream. The addresses
 * given (a magnet's `x.pe`, `--peer`) and the trackers always; the public
 * sources (peer exchange, the DHT, local discovery) only for torrents that
 * are not private (BEP 27).
 */
import { type Effect, Schedule, Stream } from "effect"
import type { Dht } from "../dht/Dht.ts"
import type { Address } from "../peer/Network.ts"
import * as Tracker from "../tracker/Tracker.ts"

export const peers = (options: {
  readonly given: ReadonlyArray<Address>
  readonly tiers: Tracker.Tiers
  readonly params: Effect.Effect<Tracker.AnnounceParams>
  readonly private: boolean
  /** Sources that private torrents must not use. */
  readonly public: ReadonlyArray<Stream.Stream<Address>>
}): Stream.Stream<Address, never, Tracker.Tracker> =>
  Stream.mergeAll([
    Stream.fromIterable(options.given),
    Tracker.peers(options.tiers, options.params),
    ...(options.private ? [] : options.public)
  ], { concurrency: "unbounded" })

/** How often a torrent looks itself up in the DHT and announces itself there (as trackers do, every 15 minutes). */
export const dhtIntervalMillis = 15 * 60 * 1000

/** A torrent's peers from the DHT: a lookup, then our announce (BEP 5), again every interval. */
export const fromDht = (dht: Dht["Service"], infoHash: Uint8Array, port: number): Stream.Stream<Address> =>
  Stream.concat(dht.lookup(infoHash), Stream.fromEffectDrain(dht.announce(infoHash, port))).pipe(
    Stream.repeat(Schedule.spaced(dhtIntervalMillis))
  )
