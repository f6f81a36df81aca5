/**
 * MemoryUdp: an in-memory UDP network for deterministic (TestClock) tests.
 * Each socket has an IPv4 address; a datagram written to an address reaches
 * the socket bound there (in order, never lost), or nothing when none is.
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
  const socket = (host: string, port: number) =>
    Effect.gen(function*() {
      const address = NetAddress.inetAddressFromIpStringUnsafe(host, port)
      const inbox = yield* Queue.unbounded<DatagramSocket.Datagram>()
      inboxes.set(`${host}:${port}`, inbox)
      const deliver = ({ address: to, payload }: DatagramSocket.OutgoingDatagram) =>
        Effect.suspend(() => {
          if (to === undefined || !NetAddress.isInetAddress(to)) return Effect.die("a destination address is required")
          const target = inboxes.get(`${NetAddress.formatIp(to.address)}:${to.port}`)
          const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload
          return target === undefined ? Effect.void : Queue.offer(target, { payload: bytes, address }).pipe(Effect.asVoid)
        })
      return DatagramSocket.make({
        reader: Effect.succeed({
          pull: Effect.map(Queue.take(inbox), (datagram) => [datagram] as const),
          address,
          dropped: () => 0,
          joinMulticast: () => Effect.die("multicast is not simulated")
        }),
        writer: Effect.succeed({
          write: deliver,
          writeAll: (datagrams) => Effect.forEach(datagrams, deliver, { discard: true })
        })
      })
    })
  return { socket }
})
