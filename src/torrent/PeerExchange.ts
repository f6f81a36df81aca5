/**
 * PeerExchange: peer exchange (BEP 11, ut_pex) for one torrent.
 *
 * Sessions report the peers we talk to (by the address they listen on: the
 * one we dialled, or the port an incoming peer gave in its extended
 * handshake) and the peers others tell us about. Each session sends its peer
 * what changed since its last message (`Round`): at most `Pex.maxPeers`
 * added and dropped, at most once per `intervalMillis`. What others tell us
 * comes out of `discovered`, one more peer source for the Monitor.
 *
 * Off for private torrents (BEP 27): we neither offer ut_pex nor read it.
 */
import { Context, Effect, Layer, Queue, Stream } from "effect"
import type { Address } from "../peer/PeerConnector.ts"
import { keyOf, type PeerKey } from "../peer/PeerEvent.ts"
import * as Pex from "../protocol/Pex.ts"

/**
 * Least time between two messages to one peer: just over a minute, since
 * ut_pex (webtorrent) hangs up on peers whose messages come less than 60 s
 * apart, and delivery jitter must not bring two of ours under that.
 */
export const intervalMillis = 65_000
/** Least time between two messages from one peer that we read (BEP 11: at most one a minute). */
export const minReceivedMillis = 55_000
/** How often a session looks for news while it has had nothing to tell. */
export const pollMillis = 5_000
/** Peers learnt from others and not yet taken by the Monitor. */
const maxDiscovered = 1000

/** A peer we could recommend: where it listens, and its BEP 11 flags. */
export interface Entry {
  readonly address: Address
  readonly flags: number
}

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

/** What one peer has been told so far; `next` gives the changes since. */
export class Round {
  /** By listening address. */
  private readonly told = new Map<PeerKey, Entry>()

  /**
   * The message telling the peer of session `self` what changed in `swarm`
   * (itself left out), at most `Pex.maxPeers` added and dropped; the rest
   * waits for the next round. Undefined when there is nothing new.
   */
  next(swarm: ReadonlyMap<PeerKey, Entry>, self: PeerKey): Pex.PexMessage | undefined {
    // The peer's own addresses: its session's, and where it listens (it may
    // have a second session with us, which must not tell it of itself).
    const mine = swarm.get(self)
    const own = new Set([self, ...(mine === undefined ? [] : [keyOf(mine.address)])])
    const current = new Map<PeerKey, Entry>()
    for (const [, entry] of swarm) if (!own.has(keyOf(entry.address))) current.set(keyOf(entry.address), entry)
    const added = [...current].filter(([key]) => !this.told.has(key)).slice(0, Pex.maxPeers)
    const dropped = [...this.told].filter(([key]) => !current.has(key)).slice(0, Pex.maxPeers)
    if (added.length === 0 && dropped.length === 0) return undefined
    for (const [key, entry] of added) this.told.set(key, entry)
    for (const [key] of dropped) this.told.delete(key)
    return {
      added: added.map(([, entry]) => ({ ...entry.address, flags: entry.flags })),
      dropped: dropped.map(([, entry]) => entry.address)
    }
  }
}
