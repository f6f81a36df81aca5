/**
 * MemoryUdp: an in-memory UDP network for deterministic (TestClock) tests.
 * Each socket has an IPv4 address; a datagram written to an address reaches
 * the socket bound there (in order, never lost), or nothing when none is.
 * A datagram to a multicast group reaches every socket that joined the group
 * and is bound to the destination port, the sender included (like
 * multicast loopback).
 */
import { Effect, Queue } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as DatagramSocket from "effect/socket/DatagramSocket"

export interface Network {
  /** A socket bound to `host:port` on this network. */
  readonly socket: (host: string, port: number) => Effect.Effect<DatagramSocket.DatagramSocket>
}

export const makeNetwork: Effect.Effect<Network> = Effect.sync(() => {
  const inboxes = new Map<string, Queue.Queue<DatagramSocket.Datagram>>()
  // "group:port" → the inboxes of the sockets on that port that joined the group
  const groups = new Map<string, Set<Queue.Queue<DatagramSocket.Datagram>>>()
  const socket = (host: string, port: number) =>
    Effect.gen(function*() {
      const address = NetAddress.inetAddressFromIpStringUnsafe(host, port)
      const inbox = yield* Queue.unbounded<DatagramSocket.Datagram>()
      inboxes.set(`${host}:${port}`, inbox)
      const deliver = ({ address: to, payload }: DatagramSocket.OutgoingDatagram) =>
        Effect.suspend(() => {
          if (to === undefined || !NetAddress.isInetAddress(to)) return Effect.die("a destination address is required")
          const key = `${NetAddress.formatIp(to.address)}:${to.port}`
          const bound = inboxes.get(key)
          const targets = NetAddress.isMulticast(to.address) ? [...groups.get(key) ?? []] : bound ? [bound] : []
          const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload
          return Effect.forEach(targets, (target) => Queue.offer(target, { payload: bytes, address }), {
            discard: true
          })
        })
      return DatagramSocket.make({
        reader: Effect.succeed({
          pull: Effect.map(Queue.take(inbox), (datagram) => [datagram] as const),
          address,
          dropped: () => 0,
          joinMulticast: ({ group }) => {
            const key = `${NetAddress.formatIp(group)}:${port}`
            return Effect.acquireRelease(
              Effect.sync(() => groups.set(key, (groups.get(key) ?? new Set()).add(inbox))),
              () => Effect.sync(() => groups.get(key)?.delete(inbox))
            ).pipe(Effect.asVoid)
          }
        }),
        writer: Effect.succeed({
          write: deliver,
          writeAll: (datagrams) => Effect.forEach(datagrams, deliver, { discard: true })
        })
      })
    })
  return { socket }
})
