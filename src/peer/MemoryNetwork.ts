/**
 * MemoryNetwork: a whole network in memory, for tests and simulations. Each
 * host (an address such as "10.0.0.1") gets its own `Network` layer, so
 * several engines in one process are distinct peers to each other.
 *
 * TCP: `listen` registers host:port; `connect` to a registered address gives
 * a connected pair of MemorySockets (the listener gets the other end, from
 * the dialler's host and a port of its own), to any other address a refused
 * socket. A `link` gives each connection a latency and a rate (see
 * MemorySocket). UDP: MemoryUdp, each socket bound on its host, over
 * `udpLink` (loss, duplication, jitter).
 * Nothing here reads the wall clock: under TestClock the network is
 * deterministic.
 */
import { Effect, Layer } from "effect"
import { type Connection, ListenError, Network } from "./Network.ts"
import * as MemorySocket from "./MemorySocket.ts"
import * as MemoryUdp from "./MemoryUdp.ts"

export interface Options {
  /** How bytes travel from host `from` to host `to` (default: at once). */
  readonly link?: ((from: string, to: string) => MemorySocket.Link) | undefined
  /** How datagrams travel from host `from` to host `to`: delay, jitter, loss, duplication (default: at once, all). */
  readonly udpLink?: ((from: string, to: string) => MemoryUdp.Link) | undefined
}

export interface MemoryNetwork {
  /** The network as seen from `host`. */
  readonly layer: (host: string) => Layer.Layer<Network>
}

/** Where ports handed out by the network start (listening on port 0, a dialler's end, UDP). */
const firstEphemeralPort = 49152

export const make = (options: Options = {}): Effect.Effect<MemoryNetwork> =>
  Effect.gen(function*() {
    const udp = yield* MemoryUdp.makeNetworkWith({ link: options.udpLink })
    const listeners = new Map<string, (connection: Connection) => void>()
    let nextPort = firstEphemeralPort
    const link = options.link ?? (() => ({}))

    const listen = (host: string): Network["Service"]["listen"] => (listenOptions, onConnection) =>
      Effect.gen(function*() {
        const taken = (port: number) => listeners.has(`${host}:${port}`)
        if (listenOptions.strict === true && taken(listenOptions.port)) {
          return yield* new ListenError({ port: listenOptions.port, detail: "the port is taken" })
        }
        // On the layer's host whatever `listenOptions.host` says: a host has one address here.
        const port = listenOptions.port === 0 || taken(listenOptions.port) ? nextPort++ : listenOptions.port
        const key = `${host}:${port}`
        yield* Effect.acquireRelease(
          Effect.sync(() => listeners.set(key, onConnection)),
          () => Effect.sync(() => listeners.delete(key))
        )
        return port
      })

    const connect = (host: string): Network["Service"]["connect"] => (address) =>
      Effect.gen(function*() {
        const accept = listeners.get(`${address.host}:${address.port}`)
        if (accept === undefined) return MemorySocket.refused()
        const pair = yield* MemorySocket.makePairWith(link(host, address.host))
        accept({ socket: pair.remote.socket, host, port: nextPort++ })
        return pair.local.socket
      })

    const layer = (host: string) =>
      Layer.succeed(
        Network,
        Network.of({
          connect: connect(host),
          listen: listen(host),
          datagram: (datagram) =>
            datagram.connect === undefined
              ? udp.socket(host, datagram.bind?.port || nextPort++) // port 0 or none: any
              : Effect.die("the memory network has no connected UDP sockets (UDP trackers)")
        })
      )
    return { layer }
  })
