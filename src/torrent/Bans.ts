/**
 * Bans: the peers a torrent refuses for sending corrupt data (bad blocks, or
 * bad metadata), kept by the manager across pause and resume.
 *
 * A peer is banned by address (host:port) and by peer id, so the same client
 * is refused from another port. A client that comes back each time from a
 * new port with a new peer id escapes both, so bans escalate to the host:
 * once peers with two different ids have been banned there, no connection
 * from that host is accepted, and none dialled, for a cool-down of 30 s; at
 * the third id the host itself is banned. One bad client behind an address
 * (a NAT) costs the others nothing; two cost them new connections for the
 * cool-down, three all new connections. Connections already open are kept.
 */
import { hostOf, type PeerKey } from "../peer/PeerEvent.ts"

/** Different peer ids banned at one host before the host is. */
export const hostBanAfter = 3
/** How long a host is held back after its second banned id. */
export const cooldownMillis = 30_000

interface HostRecord {
  /** Ids banned there (the address, for a peer banned before its handshake told its id). */
  readonly ids: Set<string>
  /** Until when no connection with the host is made. */
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
    const record = this.hosts.get(host) ?? { ids: new Set(), until: 0 }
    this.hosts.set(host, record)
    record.ids.add(id ?? peer)
    if (record.ids.size >= hostBanAfter) record.until = Infinity
    else if (record.ids.size > 1) record.until = now + cooldownMillis
  }

  /** Whether a connection with `peer` (incoming, or one we would dial) is refused at time `now`. */
  refuses(peer: PeerKey, now: number): boolean {
    return this.addresses.has(peer) || (this.hosts.get(hostOf(peer))?.until ?? 0) > now
  }

  /** Whether the address itself was banned (not only held back with its host). */
  banned(peer: PeerKey): boolean {
    return this.addresses.has(peer)
  }

  /** Whether a peer id was banned. */
  hasId(id: string): boolean {
    return this.ids.has(id)
  }
}
