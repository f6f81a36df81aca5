/**
 * Admission: the process-wide budget of peer connections, shared by every
 * torrent. A connection holds a slot from before it is dialled (or as soon as
 * it is accepted) until it closes. Incoming connections are also limited per
 * remote host, so one address cannot take every slot (outgoing ones are
 * not: we choose whom we dial, and seeders may share a host).
 *
 * `Admission` is a reference whose default admits everything; the
 * TorrentManager provides one made from its settings.
 */
import { Context } from "effect"

export interface Limits {
  /** Open connections, incoming and outgoing, over all torrents. */
  readonly maxConnections: number
  /** Open incoming connections from one host (IP address). */
  readonly maxConnectionsPerHost: number
}

export interface Budget {
  /** Takes a slot for a connection we dial; false when none is free. */
  readonly admitOutgoing: () => boolean
  /** Takes a slot for a connection from `host`; false when none is free or the host has its share. */
  readonly admitIncoming: (host: string) => boolean
  /** Gives back a slot (`host` for an incoming one). */
  readonly release: (host?: string) => void
  readonly open: () => number
}

export const make = (limits: Limits): Budget => {
  let open = 0
  const perHost = new Map<string, number>()
  return {
    admitOutgoing: () => open < limits.maxConnections && ++open > 0,
    admitIncoming: (host) => {
      const fromHost = perHost.get(host) ?? 0
      if (open >= limits.maxConnections || fromHost >= limits.maxConnectionsPerHost) return false
      open++
      perHost.set(host, fromHost + 1)
      return true
    },
    release: (host) => {
      open--
      if (host === undefined) return
      const left = (perHost.get(host) ?? 1) - 1
      if (left === 0) perHost.delete(host)
      else perHost.set(host, left)
    },
    open: () => open
  }
}

export const Admission = Context.Reference<Budget>("effect-torrent/peer/Admission", {
  defaultValue: () => make({ maxConnections: Infinity, maxConnectionsPerHost: Infinity })
})
