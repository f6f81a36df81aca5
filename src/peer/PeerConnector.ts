/**
 * PeerConnector: opens connections to peers. `layerNode` dials TCP;
 * tests swap in in-memory sockets.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Context, type Effect, Layer } from "effect"
import type * as Socket from "effect/socket/Socket"

export interface Address {
  readonly host: string
  readonly port: number
}

export class PeerConnector extends Context.Service<PeerConnector, {
  /** A socket that dials when its reader is acquired (in the session's scope). */
  readonly connect: (address: Address, timeoutMillis: number) => Effect.Effect<Socket.Socket>
}>()("effect-torrent/peer/PeerConnector") {
  static readonly layerNode = Layer.succeed(
    PeerConnector,
    PeerConnector.of({
      connect: (address, timeoutMillis) =>
        NodeSocket.makeNet({ host: address.host, port: address.port, noDelay: true, openTimeout: timeoutMillis })
    })
  )
}
