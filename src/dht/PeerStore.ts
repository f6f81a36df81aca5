/**
 * The peers announced to us (announce_peer), by info-hash, for get_peers
 * replies. Bounded: an announce lasts 30 minutes (peers re-announce more
 * often than that), a torrent keeps its 100 newest peers, and the store its
 * 1000 most recently announced torrents. Pure, with the time passed in.
 */
import * as CompactPeer from "../protocol/CompactPeer.ts"
import * as Krpc from "./Krpc.ts"

export const PEER_LIFETIME_MILLIS = 30 * 60_000

export interface Limits {
  readonly peersPerHash: number
  readonly hashes: number
}

export const defaultLimits: Limits = { peersPerHash: 100, hashes: 1000 }

/** The most peers one get_peers reply carries (they must fit a datagram). */
export const MAX_VALUES = 50

const keyOf = (infoHash: Uint8Array) => Buffer.from(infoHash).toString("hex")

export class PeerStore {
  // Maps iterate in insertion order; re-inserting on every announce keeps the oldest first.
  private readonly torrents = new Map<string, Map<string, { readonly peer: Krpc.PeerAddress; readonly at: number }>>()

  constructor(readonly limits: Limits = defaultLimits) {}

  add(infoHash: Uint8Array, peer: Krpc.PeerAddress, now: number): void {
    const key = keyOf(infoHash)
    const peers = this.torrents.get(key) ?? new Map()
    this.torrents.delete(key)
    this.torrents.set(key, peers)
    const peerKey = CompactPeer.format(peer)
    peers.delete(peerKey)
    peers.set(peerKey, { peer, at: now })
    for (const oldest of peers.keys()) {
      if (peers.size <= this.limits.peersPerHash) break
      peers.delete(oldest)
    }
    for (const oldest of this.torrents.keys()) {
      if (this.torrents.size <= this.limits.hashes) break
      this.torrents.delete(oldest)
    }
  }

  /** The newest unexpired peers of `infoHash` (of one family, if given), at most `max`. */
  get(infoHash: Uint8Array, now: number, max: number = MAX_VALUES, family?: Krpc.Family): Array<Krpc.PeerAddress> {
    const peers = this.torrents.get(keyOf(infoHash))
    if (peers === undefined) return []
    for (const [peerKey, { at }] of peers) {
      if (now - at < PEER_LIFETIME_MILLIS) break
      peers.delete(peerKey)
    }
    if (peers.size === 0) this.torrents.delete(keyOf(infoHash))
    const all = Array.from(peers.values(), ({ peer }) => peer)
    return (family === undefined ? all : all.filter((peer) => Krpc.familyOf(peer.host) === family)).slice(-max)
      .reverse()
  }
}
