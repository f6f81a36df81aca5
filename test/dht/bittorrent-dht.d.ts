// bittorrent-dht@11 ships no types; the tests use only these parts of it.
declare module "bittorrent-dht" {
  import type { EventEmitter } from "node:events"

  export interface Node {
    readonly host: string
    readonly port: number
    readonly id?: Uint8Array
  }

  export default class DHT extends EventEmitter {
    constructor(
      options?: { bootstrap?: false | ReadonlyArray<string | { host: string; port: number }>; timeout?: number }
    )
    readonly nodeId: Uint8Array
    readonly nodes: { toArray(): Array<Node> }
    listen(port: number, host: string, callback: () => void): void
    address(): { address: string; port: number }
    addNode(node: { host: string; port: number; id?: Uint8Array }): void
    announce(infoHash: Uint8Array, port: number, callback: (error: Error | null) => void): void
    lookup(infoHash: Uint8Array, callback: (error: Error | null) => void): void
    destroy(callback: () => void): void
  }
}
