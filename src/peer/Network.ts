/**
 * Network: every socket the engine opens goes through this service, so an
 * application (or a test) can swap the whole network: dial TCP, listen on
 * TCP, open UDP sockets (the DHT, local discovery, UDP trackers).
 *
 * `layerNode` is the real one: `node:net` and `node:dgram` (dialled
 * connections read into pooled memory: see `TcpSocket`). The listener
 * tries the next ports when the configured one is taken (unless `strict`),
 * and destroys the connections it accepted: a connection when the scope it
 * is read in closes, and at the latest when the listener closes. (Closing an
 * Effect socket made from a Node socket only half-closes it, and then stops
 * reading: the connection would last until the peer hung up, which a peer
 * still sending to us never does, and the listener, which waits for its
 * connections, would never close.)
 */
import * as NodeDatagramSocket from "@effect/platform-node/NodeDatagramSocket"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import type * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import type * as Socket from "effect/socket/Socket"
import * as Net from "node:net"
import * as TcpSocket from "./TcpSocket.ts"

export interface Address {
  readonly host: string
  readonly port: number
}

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  port: Schema.Number,
  detail: Schema.String
}) {
  override get message() {
    return `cannot listen for peers from port ${this.port}: ${this.detail}`
  }
}

/** A connection that came in. */
export interface Connection {
  readonly socket: Socket.Socket
  readonly host: string
  readonly port: number
}

export interface ListenOptions {
  /** 0: any free port. */
  readonly port: number
  /** Where to listen (default: every address, IPv6 and IPv4 where the system allows). */
  readonly host?: string | undefined
  /** Fail when `port` is taken, instead of trying the next ones and then any free port. */
  readonly strict?: boolean | undefined
}

/** A UDP socket: bound to a local address, and/or connected to one peer. */
export interface DatagramOptions {
  readonly bind?: Address | undefined
  readonly connect?: Address | undefined
  readonly reuseAddress?: boolean | undefined
  /** An IPv6 socket that takes no IPv4 traffic, so an IPv4 socket can have the same port (the DHT's two nodes). */
  readonly ipv6Only?: boolean | undefined
  /** Room for bursts (uTP): the kernel's send and receive buffers in bytes, and datagrams queued unread. */
  readonly buffers?: { readonly kernelBytes: number; readonly datagrams: number } | undefined
  /** Multicast (local discovery): the interface to send from, whether to hear ourselves. */
  readonly multicast?: {
    readonly interface?: NetAddress.MulticastInterface | undefined
    readonly loopback?: boolean
    readonly ttl?: number
  } | undefined
}

/** What a dial is for, beyond the address. */
export interface ConnectOptions {
  /** The torrent the connection is for (message stream encryption keys the handshake with it). */
  readonly infoHash?: Uint8Array | undefined
}

export class Network extends Context.Service<Network, {
  /** A TCP connection to `address`, dialled when its reader is acquired (in the caller's scope). */
  readonly connect: (address: Address, timeoutMillis: number, options?: ConnectOptions) => Effect.Effect<Socket.Socket>
  /**
   * Accepts TCP connections, calling `onConnection` for each (the caller
   * runs and supervises what reads it); closes with the scope. Returns the
   * port bound.
   */
  readonly listen: (
    options: ListenOptions,
    onConnection: (connection: Connection) => void
  ) => Effect.Effect<number, ListenError, Scope.Scope>
  /** A UDP socket, opened when its reader or writer is acquired. */
  readonly datagram: (options: DatagramOptions) => Effect.Effect<DatagramSocket.DatagramSocket>
}>()("effect-torrent/peer/Network") {
  static readonly layerNode = Layer.sync(Network, () =>
    Network.of({
      connect: (address, timeoutMillis) => Effect.sync(() => TcpSocket.make({ ...address, timeoutMillis })),
      listen: listenNode,
      datagram: (options) => {
        const common = {
          bind: options.bind === undefined ? undefined : { address: options.bind.host, port: options.bind.port },
          reuseAddress: options.reuseAddress,
          ipv6Only: options.ipv6Only,
          multicast: options.multicast,
          ...(options.buffers === undefined ? {} : {
            kernelReceiveBufferSize: options.buffers.kernelBytes,
            kernelSendBufferSize: options.buffers.kernelBytes,
            receiveBuffer: { capacity: options.buffers.datagrams }
          })
        }
        return NodeDatagramSocket.make(
          options.connect === undefined
            ? common
            : { ...common, connect: { address: options.connect.host, port: options.connect.port } }
        )
      }
    }))
}

/** Ports tried after the configured one when it is taken; then any free port. */
const fallbackPorts = 10

const listenOn = (server: Net.Server, port: number, host: string | undefined) =>
  Effect.callback<number, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen({ port, ...(host === undefined ? {} : { host }) }, () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as Net.AddressInfo).port))
    })
  })

const listenNode = Effect.fnUntraced(function*(options: ListenOptions, onConnection: (connection: Connection) => void) {
  const runSync = Effect.runSyncWith(yield* Effect.context<never>())
  const open = new Set<Net.Socket>()
  const server = Net.createServer({ noDelay: true }, (raw) => {
    if (raw.remoteAddress === undefined || raw.remotePort === undefined) return raw.destroy()
    open.add(raw)
    raw.once("close", () => open.delete(raw))
    onConnection({
      socket: runSync(NodeSocket.fromDuplex(
        Effect.acquireRelease(Effect.succeed(raw), () => Effect.sync(() => raw.destroy()))
      )),
      host: raw.remoteAddress.replace(/^::ffff:/, ""),
      port: raw.remotePort
    })
  })
  yield* Effect.addFinalizer(() =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
      // Those no session took (or still reads): `close` waits for every one.
      for (const raw of open) raw.destroy()
    })
  )
  const { port, host } = options
  let lastError = ""
  const candidates = port === 0 || options.strict === true
    ? [port]
    : [...Array.from({ length: fallbackPorts + 1 }, (_, i) => port + i), 0]
  for (const candidate of candidates) {
    const bound = yield* listenOn(server, candidate, host).pipe(
      Effect.catch((error) =>
        host === undefined && (error as NodeJS.ErrnoException).code === "EAFNOSUPPORT"
          ? listenOn(server, candidate, "0.0.0.0") // no IPv6 here
          : Effect.fail(error)
      ),
      Effect.tapError((error) => Effect.sync(() => (lastError = error.message))),
      Effect.option
    )
    if (bound._tag === "Some") return bound.value
  }
  return yield* new ListenError({ port, detail: lastError })
})
