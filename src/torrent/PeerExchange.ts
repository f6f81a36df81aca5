/**
 * PeerExchange: peer exchange (BEP 11, ut_pex) for one torrent.
 *
 * Sessions report the peers we talk to (by the address they listen on: the
 * one we dialled, or the port an incoming peer gave in its extended
 * handshake) and the peers others tell us about. Each session sends its peer
 * what changed since its last message (`PexRound`). What others tell us
 * comes out of `discovered`, one more peer source for the Monitor.
 *
 * Off for private torrents (BEP 27): we neither offer ut_pex nor read it.
 */
import { Context, Effect, Layer, Queue, Stream } from "effect"
import type { Address } from "../peer/Network.ts"
import type { PeerKey } from "../peer/PeerEvent.ts"
import type { Entry } from "../peer/PexRound.ts"

/** Peers learnt from others and not yet taken by the Monitor. */
const maxDiscovered = 1000

export class PeerExchange extends Context.Service<PeerExchange, {
  /** False for private torrents. */
  readonly enabled: boolean
  /** A session's peer, reachable at `entry.address`. */
  readonly connected: (peer: PeerKey, entry: Entry) => Effect.Effect<void>
  readonly disconnected: (peer: PeerKey) => Effect.Effect<void>
  /** The peers we talk to now, by session. */
  readonly swarm: Effect.Effect<ReadonlyMap<PeerKey, Entry>>
  /** Addresses a peer sent us. */
  readonly found: (addresses: Iterable<Address>) => Effect.Effect<void>
  /** What peers told us, for the Monitor (bounded: beyond `maxDiscovered` waiting, the oldest go). */
  readonly discovered: Stream.Stream<Address>
}>()("effect-torrent/torrent/PeerExchange") {
  static readonly layer = (enabled: boolean) =>
    Layer.effect(
      PeerExchange,
      Effect.gen(function*() {
        const swarm = new Map<PeerKey, Entry>()
        const discovered = yield* Queue.sliding<Address>(maxDiscovered)
        return PeerExchange.of({
          enabled,
          connected: (peer, entry) => Effect.sync(() => void swarm.set(peer, entry)),
          disconnected: (peer) => Effect.sync(() => void swarm.delete(peer)),
          swarm: Effect.sync(() => new Map(swarm)),
          found: (addresses) => (enabled ? Queue.offerAll(discovered, addresses).pipe(Effect.asVoid) : Effect.void),
          discovered: Stream.fromQueue(discovered)
        })
      })
    )
}
