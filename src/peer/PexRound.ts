/**
 * PexRound: what one session tells its peer in ut_pex messages (BEP 11):
 * the changes in the swarm since its last message, at most `Pex.maxPeers`
 * added and dropped, at most once per `intervalMillis`.
 */
import * as Pex from "../protocol/Pex.ts"
import type { Address } from "./Network.ts"
import { keyOf, type PeerKey } from "./PeerEvent.ts"

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
/** A peer we could recommend: where it listens, and its BEP 11 flags. */
export interface Entry {
  readonly address: Address
  readonly flags: number
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
