/**
 * MetadataLiar: a scripted peer on 127.0.0.1 (node:net) that speaks just
 * enough BEP 3/10/9 to offer a torrent's metadata, and lies about it in one
 * way (or none, to serve metadata that is hostile in itself): an oversized
 * `metadata_size`, a zero one, pieces whose bytes do not hash to the
 * info-hash, a piece index out of range, or a block of the wrong size. Or it
 * hogs the requests: never answers them, rejects them all, or trickles its
 * answers out one byte every 2 s (bytes keep coming, no answer ever does).
 * It counts its connections and who closed them when, so tests observe the
 * fetcher from the other end of the wire. Closed with the scope.
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import * as LocalServer from "./LocalServer.ts"
import type { Address } from "../../src/peer/Network.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Metadata from "../../src/protocol/Metadata.ts"

/** How it lies; "none": it tells the truth (for metadata that is itself hostile). */
export type Lie =
  | "oversized"
  | "zero-size"
  | "wrong-hash"
  | "out-of-range"
  | "wrong-size"
  | "silent"
  | "reject"
  | "trickle"
  | "none"

export interface Stats {
  connections: number
  /**
   * Connections it hung up on because they did not start with a BitTorrent
   * handshake, as a plain peer does: the engine's encrypted first dial (MSE,
   * under its default `prefer`), which it follows with a plain one.
   */
  refused: number
  /** Connections that the other side closed. */
  closedByPeer: number
  /** For each connection the other side closed, how long after it was accepted (ms). */
  readonly closedByPeerAfterMillis: Array<number>
  /** ut_metadata requests received. */
  requests: number
}

const protocol = Buffer.from("BitTorrent protocol")
/** The id we want ut_metadata on. */
const utMetadata = 3
/** A "trickle" liar's pace: one byte of its answers per this many ms. */
const trickleMillis = 2000

export const make = (options: {
  readonly infoHash: Uint8Array
  /** The real info dictionary (its size is claimed, except by the size lies). */
  readonly info: Uint8Array
  readonly lie: Lie
}): Effect.Effect<{ readonly address: Address; readonly stats: Stats }, never, Scope.Scope> => {
  const stats: Stats = { connections: 0, refused: 0, closedByPeer: 0, closedByPeerAfterMillis: [], requests: 0 }
  const sockets = new Set<Net.Socket>()
  const size = options.lie === "oversized"
    ? Metadata.maxSize + 1
    : options.lie === "zero-size"
    ? 0
    : options.info.length
  const frame = (id: number, payload: Uint8Array) => {
    const out = Buffer.alloc(5 + payload.length)
    out.writeUInt32BE(1 + payload.length, 0)
    out[4] = id
    out.set(payload, 5)
    return out
  }
  const extended = (id: number, payload: Uint8Array) => frame(20, Buffer.concat([Buffer.from([id]), payload]))

  /** The lie told in answer to a request for `piece` (none when silent). */
  const answer = (piece: number, peerId: number): Buffer | undefined => {
    if (options.lie === "silent") return undefined
    if (options.lie === "reject") return extended(peerId, Bencode.encode({ msg_type: 2, piece }))
    const begin = piece * Metadata.pieceLength
    const length = Metadata.lengthOf(size, piece)
    const block = options.lie === "wrong-hash"
      ? Buffer.alloc(length, 0x5a)
      : options.lie === "wrong-size"
      ? Buffer.from(options.info.subarray(begin, begin + length - 1))
      : Buffer.from(options.info.subarray(begin, begin + length))
    const index = options.lie === "out-of-range" ? Metadata.pieceCount(size) + 5 : piece
    return extended(peerId, Buffer.concat([Bencode.encode({ msg_type: 1, piece: index, total_size: size }), block]))
  }

  const onConnection = (socket: Net.Socket) => {
    stats.connections++
    sockets.add(socket)
    const acceptedAt = Date.now()
    let closing = false
    let buffered = Buffer.alloc(0)
    let handshaken = false
    let theirMetadataId: number | undefined
    /** Answers not yet trickled out. */
    let trickled = Buffer.alloc(0)
    const trickler = setInterval(() => {
      if (trickled.length === 0) return
      socket.write(trickled.subarray(0, 1))
      trickled = trickled.subarray(1)
    }, trickleMillis)
    socket.on("error", () => {})
    socket.on("close", () => {
      clearInterval(trickler)
      if (!closing) {
        stats.closedByPeer++
        stats.closedByPeerAfterMillis.push(Date.now() - acceptedAt)
      }
      sockets.delete(socket)
    })
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (!handshaken) {
        if (buffered.length < 68) return
        if (buffered[0] !== 19 || !buffered.subarray(1, 20).equals(protocol)) {
          stats.refused++
          closing = true
          return socket.destroy()
        }
        handshaken = true
        const reply = Buffer.alloc(68)
        reply[0] = 19
        protocol.copy(reply, 1)
        reply[25] = 0x10 // extension protocol
        Buffer.from(options.infoHash).copy(reply, 28)
        Buffer.from("-ML0001-liarliarliar").copy(reply, 48)
        buffered = buffered.subarray(68)
        socket.write(
          Buffer.concat([reply, extended(0, Bencode.encode({ m: { ut_metadata: utMetadata }, metadata_size: size }))])
        )
      }
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
        const length = buffered.readUInt32BE(0)
        const message = buffered.subarray(4, 4 + length)
        buffered = buffered.subarray(4 + length)
        if (length < 2 || message[0] !== 20) continue
        const payload = message.subarray(2)
        if (message[1] === 0) {
          const m = (Bencode.decode(payload) as { success?: { m?: { ut_metadata?: number } } }).success?.m
          theirMetadataId = m?.ut_metadata
          continue
        }
        if (message[1] !== utMetadata || theirMetadataId === undefined) continue
        const request = Metadata.parse(payload)
        if (request._tag !== "Success" || request.success._tag !== "Request") continue
        stats.requests++
        const reply = answer(request.success.piece, theirMetadataId)
        if (reply === undefined) continue
        if (options.lie === "trickle") trickled = Buffer.concat([trickled, reply])
        else socket.write(reply)
      }
    })
    return () => {
      closing = true
      socket.destroy()
    }
  }

  return Effect.acquireRelease(
    Effect.callback<{ server: Net.Server; closers: Set<() => void> }>((resume) => {
      const closers = new Set<() => void>()
      const server = Net.createServer((socket) => closers.add(onConnection(socket)))
      server.once("error", (error) => resume(Effect.die(error)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, closers })))
    }),
    ({ closers, server }) =>
      Effect.callback<void>((resume) => {
        for (const close of closers) close()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ server }) => ({
    address: { host: "127.0.0.1", port: (server.address() as Net.AddressInfo).port },
    stats
  })))
}

/**
 * A TCP proxy on 127.0.0.1 to `target` that holds every connection until
 * `open()` is called: a peer that shows up only when the test says so.
 */
export const gate = (
  target: Address
): Effect.Effect<{ readonly address: Address; readonly open: () => void }, never, Scope.Scope> => {
  let opened = false
  const waiting: Array<() => void> = []
  const sockets = new Set<Net.Socket>()
  const onConnection = (client: Net.Socket) => {
    sockets.add(client)
    client.on("error", () => {})
    client.on("close", () => sockets.delete(client))
    client.pause()
    const connect = () => {
      if (client.destroyed) return
      const upstream = Net.connect(target)
      sockets.add(upstream)
      upstream.on("error", () => client.destroy())
      upstream.on("close", () => {
        sockets.delete(upstream)
        client.destroy()
      })
      client.on("close", () => upstream.destroy())
      client.pipe(upstream)
      upstream.pipe(client)
      client.resume()
    }
    if (opened) connect()
    else waiting.push(connect)
  }
  return LocalServer.listen(onConnection, sockets).pipe(Effect.map((address) => ({
    address,
    open: () => {
      opened = true
      for (const connect of waiting.splice(0)) connect()
    }
  })))
}
