/**
 * BEP 14 Local Service Discovery: finds peers on the local network by
 * announcing info-hashes to a multicast group and listening to others' announces.
 *
 * - One UDP socket bound to the group's port (shared with other clients on
 *   this machine through SO_REUSEADDR), joined to the group on `interface`,
 *   sending there with TTL 1 so announces stay on the local link.
 * - `peers(infoHash, port)` announces at once and every 5 minutes while its
 *   stream runs, at most once a minute per info-hash however many streams ask
 *   (BEP 14 asks for rate-limited announces).
 * - A peer is the announce's source IP with its Port header. Our own
 *   announces, looped back by the group, carry our cookie and are ignored;
 *   garbage is dropped.
 * - Announces heard before a torrent starts are kept (bounded, 30 minutes),
 *   so a new `peers` stream begins with the peers already known.
 */
import { type Cause, Clock, Context, Duration, Effect, Layer, Queue, Random, Result, Schema, Stream } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { Network } from "../peer/Network.ts"
import * as CompactPeer from "../protocol/CompactPeer.ts"
import { PeerStore } from "../dht/PeerStore.ts"
import * as LpdMessage from "./LpdMessage.ts"

export class LpdError extends Schema.TaggedError<LpdError>()("LpdError", {
  host: Schema.String,
  port: Schema.Number,
  cause: Schema.Defect()
}) {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot start Local Service Discovery on ${CompactPeer.format(this)}: ${detail}`
  }
}

export interface Address {
  readonly host: string
  readonly port: number
}

export interface Settings {
  /** The multicast group. */
  readonly host: string
  /** The group's UDP port; 0 = any (then only clients told that port hear us). */
  readonly port: number
  /** The local interface address to join the group on and send from; undefined = the system's choice. */
  readonly interface: string | undefined
}

export const defaultSettings: Settings = { host: "239.192.152.143", port: 6771, interface: undefined }

export const REANNOUNCE = Duration.minutes(5)
export const RATE_LIMIT = Duration.minutes(1)

export class Lpd extends Context.Service<Lpd, {
  /**
   * Announces `infoHash` (40 hex digits) for our TCP `port` now and every 5
   * minutes while the stream runs; emits the peers that announce the same
   * info-hash (never ourselves).
   */
  readonly peers: (infoHash: string, port: number) => Stream.Stream<Address>
}>()("effect-torrent/lpd/Lpd") {
  /** On a UDP socket of the Network bound to 0.0.0.0 on the group's port. */
  static readonly layer = (settings: Partial<Settings> = {}) => {
    const resolved = { ...defaultSettings, ...settings }
    return Layer.effect(
      Lpd,
      Effect.gen(function*() {
        const { localInterface } = yield* parseAddresses(resolved)
        const network = yield* Network
        const socket = yield* network.datagram({
          bind: { host: "0.0.0.0", port: resolved.port },
          reuseAddress: true,
          multicast: { interface: localInterface, loopback: true, ttl: 1 }
        })
        return yield* make(resolved, socket)
      })
    )
  }

  /** On the given socket (tests pass an in-memory one). */
  static readonly layerWithSocket = (settings: Partial<Settings>, socket: DatagramSocket.DatagramSocket) =>
    Layer.effect(Lpd, make({ ...defaultSettings, ...settings }, socket))
}

export const make = Effect.fnUntraced(function*(settings: Settings, socket: DatagramSocket.DatagramSocket) {
  const { group, localInterface } = yield* parseAddresses(settings)
  const fail = (cause: unknown) => new LpdError({ host: settings.host, port: settings.port, cause })
  const reader = yield* Effect.mapError(socket.reader, fail)
  yield* Effect.mapError(reader.joinMulticast({ group, interface: localInterface }), fail)
  const writer = yield* socket.writer
  const destination = NetAddress.inetAddressUnsafe(group, reader.address.port)
  const hostHeader = `${settings.host}:${reader.address.port}`
  // Only tells our own announcements apart, so Effect's Random will do (a seeded run draws the same cookie).
  const cookie = Buffer.from(yield* Effect.replicateEffect(Random.nextIntBetween(0, 255), 8)).toString("hex")
  const store = new PeerStore({ peersPerHash: 50, hashes: 256 })
  const listeners = new Map<string, Set<Queue.Queue<Address, Cause.Done>>>()
  const lastAnnounced = new Map<string, number>()

  const receive = Effect.fnUntraced(function*(datagram: DatagramSocket.Datagram) {
    if (!NetAddress.isInetAddressV4(datagram.address)) return
    const host = NetAddress.formatIp(datagram.address.address)
    const decoded = LpdMessage.decode(datagram.payload)
    if (Result.isFailure(decoded)) return yield* Effect.logDebug(`LSD: from ${host}: ${decoded.failure.message}`)
    const message = decoded.success
    if (message.cookie === cookie) return
    const peer = { host, port: message.port }
    const now = yield* Clock.currentTimeMillis
    for (const infoHash of message.infoHashes) {
      store.add(Buffer.from(infoHash, "hex"), peer, now)
      for (const queue of listeners.get(infoHash) ?? []) Queue.offerUnsafe(queue, peer)
    }
  })

  /** Announces `infoHash` once its last announce is a minute old. */
  const announce = (infoHash: string, port: number) =>
    Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const wait = (lastAnnounced.get(infoHash) ?? -Infinity) + Duration.toMillis(RATE_LIMIT) - now
        if (wait <= 0) {
          lastAnnounced.set(infoHash, now)
          break
        }
        yield* Effect.sleep(wait)
      }
      const payload = LpdMessage.encode({ host: hostHeader, port, infoHashes: [infoHash], cookie })
      yield* writer.write({ payload, address: destination }).pipe(
        Effect.catch((error) => Effect.logDebug(`LSD: cannot announce: ${error.message}`))
      )
    })

  const peers = (infoHash: string, port: number): Stream.Stream<Address> => {
    const key = infoHash.toLowerCase()
    if (!/^[0-9a-f]{40}$/.test(key)) return Stream.die(new Error(`Lpd.peers: "${infoHash}" is not 40 hex digits`))
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return Stream.die(new Error(`Lpd.peers: ${port} is not a port`))
    }
    return Stream.callback<Address>((queue) =>
      Effect.gen(function*() {
        const queues = listeners.get(key) ?? new Set()
        listeners.set(key, queues)
        queues.add(queue)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            queues.delete(queue)
            if (queues.size === 0) listeners.delete(key)
          })
        )
        for (const peer of store.get(Buffer.from(key, "hex"), yield* Clock.currentTimeMillis)) {
          Queue.offerUnsafe(queue, peer)
        }
        return yield* Effect.forever(Effect.andThen(announce(key, port), Effect.sleep(REANNOUNCE)))
      }), { bufferSize: 64, strategy: "sliding" }).pipe(Stream.withSpan("Lpd.peers"))
  }

  yield* Effect.forever(Effect.flatMap(reader.pull, (datagrams) => Effect.forEach(datagrams, receive))).pipe(
    Effect.catch((error) => Effect.logWarning(`LSD: the UDP socket failed: ${error.message}`)),
    Effect.forkScoped
  )

  return Lpd.of({ peers })
})

/** The group (an IPv4 multicast address) and the interface as addresses, or an LpdError naming the bad one. */
const parseAddresses = (settings: Settings) =>
  Effect.gen(function*() {
    const fail = (problem: string) =>
      Effect.fail(new LpdError({ host: settings.host, port: settings.port, cause: new Error(problem) }))
    const group = NetAddress.ipv4FromString(settings.host)
    if (Result.isFailure(group) || !NetAddress.isMulticast(group.success)) {
      return yield* fail(`${settings.host} is not an IPv4 multicast group`)
    }
    if (settings.interface === undefined) return { group: group.success, localInterface: undefined }
    const localInterface = NetAddress.ipv4FromString(settings.interface)
    if (Result.isFailure(localInterface)) {
      return yield* fail(`the interface ${settings.interface} is not an IPv4 address`)
    }
    return { group: group.success, localInterface: localInterface.success }
  })
