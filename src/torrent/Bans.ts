/**
 * Bans: the peers a torrent refuses for sending corrupt data (bad blocks, or
 * bad metadata), kept by the manager across pause and resume.
 *
 * A peer is banned by address (host:port) and by peer id, so the same client
 * is refused from another port. A client that comes back each time from a
 * new port with a new peer id escapes both, so every ban also holds its host
 * back: no connection from it is accepted, and none dialled, for a cool-down
 * of 30 s after its first ban, 4 times longer after each next one (at most
 * an hour). Once peers with `hostBanAfter` different ids have been banned
 * there, the host itself is banned. Other clients behind the same address
 * (a NAT) keep the connections they have: they lose only new connections
 * during a cool-down, and new connections for good once the host is banned.
 */
import { hostOf, type PeerKey } from "../peer/PeerEvent.ts"

/** Different peer ids banned at one host before the host is. */
export const hostBanAfter = 3
const baseCooldownMillis = 30_000
const maxCooldownMillis = 60 * 60_000

interface HostRecord {
  readonly ids: Set<string>
  bans: number
  until: number
}

export class Bans {
  private readonly addresses = new Set<PeerKey>()
  private readonly ids = new Set<string>()
  private readonly hosts = new Map<string, HostRecord>()

  /** Bans `peer` (and its peer id, when its handshake told it) at time `now`. */
  ban(peer: PeerKey, id: string | undefined, now: number): void {
    this.addresses.add(peer)
    if (id !== undefined) this.ids.add(id)
    const host = hostOf(peer)
    const record = this.hosts.get(host) ?? { ids: new Set(), bans: 0, until: 0 }
    this.hosts.set(host, record)
    record.ids.add(id ?? peer)
    record.bans++
    record.until = record.ids.size >= hostBanAfter
      ? Infinity
      : now + Math.min(maxCooldownMillis, baseCooldownMillis * 4 ** (record.bans - 1))
  }

  /** Whether a connection with `peer` (incoming, or one we would dial) is refused at time `now`. */
  refuses(peer: PeerKey, now: number): boolean {
    return this.addresses.has(peer) || (this.hosts.get(hostOf(peer))?.until ?? 0) > now
  }

  /** Whether a peer id was banned. */
  hasId(id: string): boolean {
    return this.ids.has(id)
  }
}
