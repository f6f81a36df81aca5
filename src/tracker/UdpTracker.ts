/**
 * BEP 15 UDP announce and scrape (of one torrent): a connect exchange yields a connection id (reused for
 * 60 s), then the announce. A request not answered within 15·2ⁿ seconds is
 * sent again with n + 1, up to `maxRetransmits`; then the announce fails with
 * `Timeout`. Answers with another transaction id (late answers, spoofs) are
 * ignored.
 *
 * Each announce uses its own socket connected to the tracker, so the kernel
 * drops datagrams from other senders. Peers are IPv4 (6 bytes) unless that
 * socket is IPv6 (18 bytes).
 */
import { Clock, Duration, Effect, Layer, Option, Random, Result } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { Network } from "../peer/Network.ts"
import * as Bencode from "../protocol/Bencode.ts"
import * as Tracker from "./Tracker.ts"

export interface Options {
  /** Highest n in 15·2ⁿ. BEP 15 says 8 (over two hours in all); lower it to give up sooner. */
  readonly maxRetransmits?: number
  /** Opens a socket connected to host:port. Defaults to the Network's; tests pass an in-memory one. */
  readonly open?: (host: string, port: number) => Effect.Effect<DatagramSocket.DatagramSocket>
}

const protocolId = 0x41727101980n
const CONNECT = 0
const ANNOUNCE = 1
const SCRAPE = 2
const ERROR = 3
const eventCodes = { none: 0, completed: 1, started: 2, stopped: 3 } as const
const connectionLifetimeMillis = 60_000

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const network = yield* Network
    const maxRetransmits = options.maxRetransmits ?? 8
    const open = options.open ?? ((host, port) => network.datagram({ connect: { host, port } }))
    // connection ids by URL host ("host:port"), with the time they stop being valid
    const connections = new Map<string, { readonly id: Uint8Array; readonly expires: number }>()

    /**
     * One request to the tracker at `url` (`packet` given the connection id
     * and a transaction id) until an answer with `action` comes, connecting
     * first when no connection id is valid; retransmitted as BEP 15 says.
     */
    const transact = (
      url: URL,
      packet: (connectionId: Uint8Array) => (transactionId: number) => Uint8Array,
      action: number
    ) =>
      Effect.gen(function*() {
        if (url.port === "") return yield* new Tracker.UnsupportedUrl({ problem: "a udp:// URL needs a port" })
        const host = url.hostname.replace(/^\[(.*)\]$/, "$1") // IPv6 literals come bracketed
        const socket = yield* open(host, Number(url.port))
        const reader = yield* Effect.mapError(socket.reader, (cause) => new Tracker.Network({ cause }))
        const writer = yield* socket.writer

        /** Sends one request and waits `seconds` for its answer; `undefined` when none came. */
        const exchange = (packet: (transactionId: number) => Uint8Array, action: number, seconds: number) =>
          Effect.gen(function*() {
            const transactionId = yield* Random.nextIntBetween(0, 0xffffffff)
            yield* writer.write({ payload: packet(transactionId) })
            while (true) {
              for (const { payload } of yield* reader.pull) {
                if (payload.length < 8 || view(payload).getUint32(4) !== transactionId) continue
                const got = view(payload).getUint32(0)
                if (got === action) return payload
                if (got === ERROR) return yield* new Tracker.Failure({ text: Bencode.text(payload.subarray(8)) })
                return yield* new Tracker.BadResponse({ problem: `action ${got} in answer to action ${action}` })
              }
            }
          }).pipe(
            Effect.catchTag("DatagramSocketError", (cause) => Effect.fail(new Tracker.Network({ cause }))),
            Effect.timeoutOption(Duration.seconds(seconds)),
            Effect.map(Option.getOrUndefined)
          )

        const key = url.host
        for (let n = 0;; n++) {
          const seconds = 15 * 2 ** n
          const cached = connections.get(key)
          let id = cached !== undefined && cached.expires > (yield* Clock.currentTimeMillis) ? cached.id : undefined
          if (id === undefined) {
            const answer = yield* exchange(connectPacket, CONNECT, seconds)
            if (answer !== undefined) {
              if (answer.length < 16) {
                return yield* new Tracker.BadResponse({ problem: `connect answer of ${answer.length} bytes` })
              }
              id = new Uint8Array(answer.subarray(8, 16))
              connections.set(key, { id, expires: (yield* Clock.currentTimeMillis) + connectionLifetimeMillis })
            }
          }
          if (id !== undefined) {
            const answer = yield* exchange(packet(id), action, seconds)
            if (answer !== undefined) return { answer, ipv6: NetAddress.isInetAddressV6(reader.address) }
          }
          if (n >= maxRetransmits) return yield* new Tracker.Timeout({ seconds: 15 * (2 ** (n + 1) - 1) })
        }
      }).pipe(Effect.scoped)

    const announce = Effect.fn("UdpTracker.announce")(
      function*(url: URL, request: Tracker.AnnounceRequest) {
        const { answer, ipv6 } = yield* transact(url, (id) => announcePacket(id, request), ANNOUNCE)
        return yield* Effect.fromResult(parseAnnounce(answer, ipv6))
      },
      Tracker.withUrl
    )

    const scrape = Effect.fn("UdpTracker.scrape")(
      function*(url: URL, infoHash: Uint8Array) {
        const { answer } = yield* transact(url, (id) => scrapePacket(id, infoHash), SCRAPE)
        return yield* Effect.fromResult(parseScrape(answer))
      },
      Tracker.withUrl
    )

    return Tracker.UdpTransport.of({ announce, scrape })
  })

export const layerWith = (options: Options = {}) => Layer.effect(Tracker.UdpTransport, make(options))

/** Over the Node network (`layerWith` takes the Network provided). */
export const layerNode = layerWith().pipe(Layer.provide(Network.layerNode))

const connectPacket = (transactionId: number): Uint8Array => {
  const packet = new DataView(new ArrayBuffer(16))
  packet.setBigUint64(0, protocolId)
  packet.setUint32(8, CONNECT)
  packet.setUint32(12, transactionId)
  return new Uint8Array(packet.buffer)
}

const announcePacket = (connectionId: Uint8Array, request: Tracker.AnnounceRequest) => (transactionId: number) => {
  const bytes = new Uint8Array(98)
  const packet = new DataView(bytes.buffer)
  bytes.set(connectionId, 0)
  packet.setUint32(8, ANNOUNCE)
  packet.setUint32(12, transactionId)
  bytes.set(request.infoHash, 16)
  bytes.set(request.peerId, 36)
  packet.setBigUint64(56, BigInt(request.downloaded))
  packet.setBigUint64(64, BigInt(request.left))
  packet.setBigUint64(72, BigInt(request.uploaded))
  packet.setUint32(80, eventCodes[request.event])
  // 84: IP address 0 = the sender's
  packet.setUint32(88, request.key ?? 0)
  packet.setInt32(92, request.numWant)
  packet.setUint16(96, request.port)
  return bytes
}

const scrapePacket = (connectionId: Uint8Array, infoHash: Uint8Array) => (transactionId: number) => {
  const bytes = new Uint8Array(36)
  bytes.set(connectionId, 0)
  view(bytes).setUint32(8, SCRAPE)
  view(bytes).setUint32(12, transactionId)
  bytes.set(infoHash, 16)
  return bytes
}

/** A scrape answer (action 2) for one torrent: seeders, completed, leechers. */
export const parseScrape = (answer: Uint8Array) =>
  answer.length < 20
    ? Result.fail(new Tracker.BadResponse({ problem: `scrape answer of ${answer.length} bytes` }))
    : Result.succeed<Tracker.ScrapeResponse>({
      seeders: view(answer).getUint32(8),
      downloaded: view(answer).getUint32(12),
      leechers: view(answer).getUint32(16)
    })

/** An announce answer (action 1), already matched to our transaction id. */
export const parseAnnounce = (answer: Uint8Array, ipv6: boolean) => {
  if (answer.length < 20) {
    return Result.fail(new Tracker.BadResponse({ problem: `announce answer of ${answer.length} bytes` }))
  }
  return Result.map(Tracker.compactPeers(answer.subarray(20), ipv6 ? 18 : 6), (peers): Tracker.AnnounceResponse => ({
    interval: view(answer).getUint32(8),
    incomplete: view(answer).getUint32(12),
    complete: view(answer).getUint32(16),
    peers
  }))
}

const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
