/**
 * HostilePeer: a scripted peer on 127.0.0.1 (node:net) for the hardening
 * tests. The engine dials it; for each connection it runs a script that
 * writes whatever bytes it likes (bad frames, floods, a handshake one byte at
 * a time…) and may wait for what the engine sends (decoded with our own
 * FrameDecoder). It records when the engine hung up on it, so a test can
 * tell "disconnected for what it did" and how fast. Closed with the scope.
 */
import { Effect, Result, type Scope } from "effect"
import type * as Net from "node:net"
import * as LocalServer from "./LocalServer.ts"
import * as Frame from "../../src/protocol/Frame.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as WireMessage from "../../src/protocol/WireMessage.ts"
import type { Address } from "../../src/peer/Network.ts"

export type Incoming = Handshake.Handshake | WireMessage.WireMessage

export interface Connection {
  /** What the engine sent so far, decoded (its handshake first). */
  readonly received: ReadonlyArray<Incoming>
  /** Writes raw bytes (ignored once the connection is closed). */
  readonly write: (bytes: Uint8Array) => void
  readonly send: (messages: ReadonlyArray<WireMessage.WireMessage>) => void
  /** Our handshake for the torrent (or `infoHash`), with the fast and extension bits. */
  readonly handshake: (infoHash?: Uint8Array) => Uint8Array
  /**
   * Waits for the next message (after those earlier calls looked at) that
   * `match` accepts; undefined if the connection closed or `millis` passed.
   */
  readonly next: <A extends Incoming>(match: (m: Incoming) => m is A, millis?: number) => Promise<A | undefined>
  readonly closed: () => boolean
  readonly sleep: (millis: number) => Promise<void>
}

export interface Stats {
  connections: number
  /** Connections the engine closed (not the script), with how long each had been open. */
  readonly closedByEngineAfterMillis: Array<number>
  open: number
}

export interface HostilePeer {
  readonly address: Address
  readonly stats: Stats
}

export const peerId = Buffer.from("-XX0001-hostile00000")

export const make = (options: {
  readonly infoHash: Uint8Array
  readonly pieceCount: number
  readonly script: (connection: Connection) => Promise<void>
}): Effect.Effect<HostilePeer, never, Scope.Scope> => {
  const stats: Stats = { connections: 0, closedByEngineAfterMillis: [], open: 0 }
  const sockets = new Set<Net.Socket>()

  const onConnection = (socket: Net.Socket) => {
    const openedAt = Date.now()
    stats.connections++
    stats.open++
    sockets.add(socket)
    const decoder = Frame.FrameDecoder.makeWithHandshake({ maxFrame: 1 << 20 })
    const received: Array<Incoming> = []
    const waiters = new Set<() => void>()
    let closed = false
    let scriptClosing = false
    /** Messages before it were looked at by `next`. */
    let cursor = 0
    const wake = () => {
      for (const waiter of waiters) waiter()
    }
    socket.on("error", () => {})
    socket.on("data", (chunk: Buffer) => {
      if (Result.isFailure(decoder.push(new Uint8Array(chunk), received))) {
        // Bytes that are no BitTorrent (the MSE key of the engine's encrypted first dial, under its
        // default `prefer`): hung up on as a plain peer does, which is ours, not the engine's.
        scriptClosing = true
        socket.destroy()
      }
      wake()
    })
    socket.on("close", () => {
      closed = true
      stats.open--
      sockets.delete(socket)
      if (!scriptClosing) stats.closedByEngineAfterMillis.push(Date.now() - openedAt)
      wake()
    })
    const connection: Connection = {
      received,
      write: (bytes) => {
        if (!closed && !socket.destroyed) socket.write(bytes)
      },
      send: (messages) => connection.write(WireMessage.encodeBatch(messages)),
      handshake: (infoHash = options.infoHash) =>
        Handshake.encode(Handshake.make({ infoHash, peerId, features: ["fast", "extensions"] })),
      next: (match, millis = 10_000) =>
        new Promise((resolve) => {
          const done = (value: Incoming | undefined) => {
            clearTimeout(timer)
            waiters.delete(check)
            resolve(value as never)
          }
          const check = () => {
            while (cursor < received.length) {
              const m = received[cursor++]!
              if (match(m)) return done(m)
            }
            if (closed) done(undefined)
          }
          const timer = setTimeout(() => done(undefined), millis)
          waiters.add(check)
          check()
        }),
      closed: () => closed,
      sleep: (millis) => new Promise((resolve) => setTimeout(resolve, millis))
    }
    options.script(connection).catch(() => {
      scriptClosing = true
      socket.destroy()
    })
  }

  return LocalServer.listen(onConnection, sockets).pipe(Effect.map((address) => ({
    address,
    stats
  })))
}

/** A frame with any declared length, id and payload (for lengths that lie). */
export const rawFrame = (length: number, id?: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const out = Buffer.alloc(4 + (id === undefined ? 0 : 1) + payload.length)
  out.writeUInt32BE(length >>> 0, 0)
  if (id !== undefined) out[4] = id
  out.set(payload, id === undefined ? 4 : 5)
  return out
}
