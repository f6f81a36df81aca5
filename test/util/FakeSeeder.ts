/**
 * FakeSeeder: a scripted BitTorrent seeder on 127.0.0.1 (node:net) that
 * speaks just enough BEP 3 to serve a torrent: it answers the handshake,
 * sends a full bitfield and unchoke, and answers requests from the torrent's
 * bytes. Faults come from options: corrupt blocks, a bandwidth limit. It
 * counts what it did (connections, blocks, bytes), so tests can observe the
 * leecher from the other end of the wire. Closed with the scope.
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import type { Address } from "../../src/peer/Network.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"

export interface Options {
  readonly meta: Metainfo.Metainfo
  /** The torrent's bytes, all files concatenated. */
  readonly data: Uint8Array
  /** Blocks to send corrupted (one byte flipped): all when true. */
  readonly corrupt?: boolean | ((index: number, begin: number) => boolean)
  /** Most block bytes sent per second over all connections (unlimited by default). */
  readonly bytesPerSecond?: number
}

export interface Stats {
  /** Connections accepted, ever. */
  connections: number
  /** Connections open now. */
  open: number
  /**
   * Connections it hung up on because they did not start with a BitTorrent
   * handshake, as a plain peer does: the engine's encrypted first dial (MSE,
   * under its default `prefer`), which it follows with a plain one.
   */
  refused: number
  /** Connections whose handshake named our torrent. */
  handshakes: number
  blocksServed: number
  bytesServed: number
  corruptBlocksServed: number
  /** Pieces it sent at least one block of. */
  readonly piecesServed: Set<number>
  /** Connections that the other side closed (not us). */
  closedByPeer: number
  /** When (Date.now()) each connection was accepted. */
  readonly acceptedAt: Array<number>
  /** When (Date.now()) each connection closed, in the order they closed. */
  readonly closedAt: Array<number>
}

export interface FakeSeeder {
  readonly address: Address
  readonly stats: Stats
  /** Closes every open connection from this side (the peer went away). */
  readonly disconnectAll: () => void
}

const protocol = Buffer.from("BitTorrent protocol")
const maxBlock = 128 * 1024

interface Request {
  readonly index: number
  readonly begin: number
  readonly length: number
}

interface Connection {
  readonly socket: Net.Socket
  readonly queue: Array<Request>
  /** Set once either side starts closing, so a close we began is not counted as the peer's. */
  closing: boolean
}

export const make = (options: Options): Effect.Effect<FakeSeeder, never, Scope.Scope> => {
  const { meta } = options
  const infoHash = Buffer.from(InfoHash.toBytes(meta.infoHash))
  const peerId = Buffer.from(`-FS0001-${Math.random().toString(36).slice(2, 14).padEnd(12, "0")}`.slice(0, 20))
  const stats: Stats = {
    connections: 0,
    open: 0,
    refused: 0,
    handshakes: 0,
    blocksServed: 0,
    bytesServed: 0,
    corruptBlocksServed: 0,
    piecesServed: new Set(),
    closedByPeer: 0,
    acceptedAt: [],
    closedAt: []
  }
  const connections = new Set<Connection>()
  const corrupt = options.corrupt === true
    ? () => true
    : options.corrupt === undefined || options.corrupt === false
    ? () => false
    : options.corrupt

  const bitfield = () => {
    const bytes = Buffer.alloc(Math.ceil(meta.pieceCount / 8))
    for (let i = 0; i < meta.pieceCount; i++) bytes[i >> 3]! |= 0x80 >> (i & 7)
    return bytes
  }
  const message = (id: number, payload: Uint8Array = Buffer.alloc(0)) => {
    const out = Buffer.alloc(5 + payload.length)
    out.writeUInt32BE(1 + payload.length, 0)
    out[4] = id
    out.set(payload, 5)
    return out
  }

  /** Sends one block; returns its size. */
  const serve = (connection: Connection, r: Request) => {
    const start = r.index * meta.pieceLength + r.begin
    const block = Buffer.from(options.data.subarray(start, start + r.length)) // a copy: corruption must not touch the source
    const bad = corrupt(r.index, r.begin)
    if (bad) block[0] = block[0]! ^ 0xff
    const header = Buffer.alloc(13)
    header.writeUInt32BE(9 + block.length, 0)
    header[4] = 7
    header.writeUInt32BE(r.index, 5)
    header.writeUInt32BE(r.begin, 9)
    connection.socket.write(Buffer.concat([header, block]))
    stats.blocksServed++
    stats.bytesServed += block.length
    stats.piecesServed.add(r.index)
    if (bad) stats.corruptBlocksServed++
    return block.length
  }

  // Rate limit: a token bucket filled every 10 ms, shared by all connections (round robin).
  let allowance = 0
  const pump = () => {
    if (options.bytesPerSecond === undefined) return
    allowance = Math.min(allowance + options.bytesPerSecond / 100, Math.max(options.bytesPerSecond / 10, maxBlock))
    let sent = true
    while (allowance > 0 && sent) {
      sent = false
      for (const connection of connections) {
        const r = connection.queue.shift()
        if (r === undefined || connection.socket.destroyed) continue
        allowance -= serve(connection, r)
        sent = true
        if (allowance <= 0) break
      }
    }
  }

  const onConnection = (socket: Net.Socket) => {
    stats.connections++
    stats.open++
    stats.acceptedAt.push(Date.now())
    const connection: Connection = { socket, queue: [], closing: false }
    connections.add(connection)
    let buffered: Buffer = Buffer.alloc(0)
    let handshaken = false
    const hangUp = () => {
      connection.closing = true
      socket.destroy()
    }
    socket.setNoDelay(true)
    socket.on("error", () => {})
    socket.on("end", () => {
      if (!connection.closing) stats.closedByPeer++
      connection.closing = true
      socket.end()
    })
    socket.on("close", () => {
      if (!connection.closing) stats.closedByPeer++
      stats.open--
      stats.closedAt.push(Date.now())
      connections.delete(connection)
    })
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      if (!handshaken) {
        if (buffered.length < 68) return
        if (buffered[0] !== 19 || !buffered.subarray(1, 20).equals(protocol)) {
          stats.refused++
          return hangUp()
        }
        if (!buffered.subarray(28, 48).equals(infoHash)) return hangUp()
        handshaken = true
        stats.handshakes++
        buffered = buffered.subarray(68)
        const reply = Buffer.alloc(68)
        reply[0] = 19
        protocol.copy(reply, 1)
        infoHash.copy(reply, 28)
        peerId.copy(reply, 48)
        socket.write(Buffer.concat([reply, message(5, bitfield()), message(1)]))
      }
      while (buffered.length >= 4) {
        const length = buffered.readUInt32BE(0)
        if (length > maxBlock + 13) return hangUp()
        if (buffered.length < 4 + length) return
        const id = length === 0 ? -1 : buffered[4]!
        const payload = buffered.subarray(5, 4 + length)
        buffered = buffered.subarray(4 + length)
        if (id !== 6 && id !== 8) continue // keep-alive, interested, have, bitfield…: nothing to do
        if (payload.length !== 12) return hangUp()
        const r = { index: payload.readUInt32BE(0), begin: payload.readUInt32BE(4), length: payload.readUInt32BE(8) }
        if (id === 8) {
          const at = connection.queue.findIndex((q) =>
            q.index === r.index && q.begin === r.begin && q.length === r.length
          )
          if (at >= 0) connection.queue.splice(at, 1)
          continue
        }
        const valid = r.index < meta.pieceCount && r.length > 0 && r.length <= maxBlock &&
          r.begin + r.length <= Metainfo.pieceSize(meta, r.index)
        if (!valid) return hangUp()
        if (options.bytesPerSecond === undefined) serve(connection, r)
        else connection.queue.push(r)
      }
    })
  }

  return Effect.acquireRelease(
    Effect.callback<{ server: Net.Server; timer: NodeJS.Timeout }>((resume) => {
      const server = Net.createServer(onConnection)
      server.once("error", (error) => resume(Effect.die(error)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, timer: setInterval(pump, 10) })))
    }),
    ({ server, timer }) =>
      Effect.callback<void>((resume) => {
        clearInterval(timer)
        for (const connection of connections) {
          connection.closing = true
          connection.socket.destroy()
        }
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ server }) => ({
    address: { host: "127.0.0.1", port: (server.address() as Net.AddressInfo).port },
    stats,
    disconnectAll: () => {
      for (const connection of connections) {
        connection.closing = true
        connection.socket.destroy()
      }
    }
  })))
}
