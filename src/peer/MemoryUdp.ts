/**
 * MemoryUdp: an in-memory UDP network for deterministic (TestClock) tests.
 * Each socket has an IPv4 address; a datagram written to an address reaches
 * the socket bound there, or nothing when none is. A datagram to a multicast
 * group reaches every socket that joined the group and is bound to the
 * destination port, the sender included (like multicast loopback).
 *
 * By default datagrams arrive at once, in order, never lost. A `Link` makes
 * the path between two hosts like a real one: a latency (changeable while
 * running, as `link` is asked per datagram), random jitter (which reorders),
 * loss and duplication, drawn from Effect's `Random` (a seeded run is the
 * same run every time). A datagram arrives when the clock reaches its time.
 */
import { Clock, Effect, Queue, Random } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as DatagramSocket from "effect/socket/DatagramSocket"

export interface Network {
  /** A socket bound to `host:port` on this network. */
  readonly socket: (host: string, port: number) => Effect.Effect<DatagramSocket.DatagramSocket>
}

/** How datagrams travel from one host to another (default: at once, all of them). */
export interface Link {
  readonly latencyMillis?: number | undefined
  /** Up to this much more, at random, per datagram. */
  readonly jitterMillis?: number | undefined
  /** Probability that a datagram is lost. */
  readonly loss?: number | undefined
  /** Probability that a datagram arrives twice. */
  readonly duplicate?: number | undefined
  /** Bytes per second a sender's datagrams to this host go out at (queued behind each other); absent: unlimited. */
  readonly bytesPerSecond?: number | undefined
}

export interface Options {
  readonly link?: ((from: string, to: string) => Link) | undefined
}

interface InFlight {
  readonly datagram: DatagramSocket.Datagram
  readonly arrives: number
}

export const makeNetwork: Effect.Effect<Network> = Effect.suspend(() => makeNetworkWith({}))

export const makeNetworkWith = (options: Options): Effect.Effect<Network> =>
  Effect.sync(() => {
    const inboxes = new Map<string, Queue.Queue<InFlight>>()
    // "group:port" → the inboxes of the sockets on that port that joined the group
    const groups = new Map<string, Set<Queue.Queue<InFlight>>>()
    const socket = (host: string, port: number) =>
      Effect.gen(function*() {
        const address = NetAddress.inetAddressFromIpStringUnsafe(host, port)
        const inbox = yield* Queue.unbounded<InFlight>()
        inboxes.set(`${host}:${port}`, inbox)
        /** Per destination host, when what we sent there so far has gone out (ms). */
        const busyUntil = new Map<string, number>()
        /** When each copy of a datagram to `to` arrives (none: lost). */
        const arrivals = (to: string, length: number) =>
          Effect.gen(function*() {
            const link = options.link?.(host, to)
            let now = yield* Clock.currentTimeMillis
            if (link === undefined) return [now]
            if (link.bytesPerSecond !== undefined) {
              now = Math.max(now, busyUntil.get(to) ?? 0) + (length * 1000) / link.bytesPerSecond
              busyUntil.set(to, now)
            }
            if ((yield* Random.next) < (link.loss ?? 0)) return []
            const copies = (yield* Random.next) < (link.duplicate ?? 0) ? 2 : 1
            const times: Array<number> = []
            for (let i = 0; i < copies; i++) {
              times.push(now + (link.latencyMillis ?? 0) + (yield* Random.next) * (link.jitterMillis ?? 0))
            }
            return times
          })
        const deliver = ({ address: to, payload }: DatagramSocket.OutgoingDatagram) =>
          Effect.gen(function*() {
            if (to === undefined || !NetAddress.isInetAddress(to)) {
              return yield* Effect.die("a destination address is required")
            }
            const toHost = NetAddress.formatIp(to.address)
            const key = `${toHost}:${to.port}`
            const bound = inboxes.get(key)
            const targets = NetAddress.isMulticast(to.address) ? [...groups.get(key) ?? []] : bound ? [bound] : []
            const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload.slice()
            for (const arrives of yield* arrivals(toHost, bytes.length)) {
              for (const target of targets) {
                yield* Queue.offer(target, { datagram: { payload: bytes, address }, arrives })
              }
            }
          })
        /** Taken from the inbox, not yet arrived. */
        const pending: Array<InFlight> = []
        const pull = Effect.gen(function*() {
          pending.push(...(pending.length === 0 ? yield* Queue.takeAll(inbox) : yield* Queue.clear(inbox)))
          pending.sort((a, b) => a.arrives - b.arrives)
          const now = yield* Clock.currentTimeMillis
          if (pending[0]!.arrives > now) yield* Effect.sleep(pending[0]!.arrives - now)
          const at = Math.max(now, pending[0]!.arrives)
          const later = pending.findIndex((p) => p.arrives > at)
          const arrived = pending.splice(0, later === -1 ? pending.length : later)
          return arrived.map((p) => p.datagram) as unknown as readonly [
            DatagramSocket.Datagram,
            ...Array<DatagramSocket.Datagram>
          ]
        })
        return DatagramSocket.make({
          reader: Effect.succeed({
            pull,
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
