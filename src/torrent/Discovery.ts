/**
 * Discovery: where a torrent's peers come from, as one Stream. The addresses
 * given (a magnet's `x.pe`, `--peer`) and the trackers always; the public
 * sources (peer exchange, and the DHT and local discovery when they are
 * wired in: one more Stream in `public`) only for torrents that are not
 * private (BEP 27).
 */
import { type Effect, Stream } from "effect"
import type { Address } from "../peer/PeerConnector.ts"
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
