/**
 * TcpSocket over real loopback TCP: its reads land in pooled slots that are
 * reused from one pull to the next, so what a reader copies out before it
 * pulls again must be exactly what was sent; a reader that stops pulling
 * stops the connection reading (the sender is held back, and our memory with
 * it); the peer hanging up and a refused dial are socket errors.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Socket from "effect/socket/Socket"
import { createHash, randomBytes } from "node:crypto"
import * as Net from "node:net"
import * as TcpSocket from "../../src/peer/TcpSocket.ts"
import { freePort, waitUntil } from "../util/Swarm.ts"

/** A server on 127.0.0.1 that runs `onConnection` for each client; closed with the scope. */
const server = (onConnection: (socket: Net.Socket) => void) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        socket.on("error", () => {})
        onConnection(socket)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

const dial = (port: number) => TcpSocket.make({ host: "127.0.0.1", port, timeoutMillis: 5_000 })

describe("TcpSocket", () => {
  it.live("delivers every byte in order while its slots are reused, 32 MiB from one sender", () =>
    Effect.gen(function*() {
      const data = randomBytes(32 * 1024 * 1024)
      const port = yield* server((socket) => socket.end(data))
      const pull = yield* Socket.readerBytes(dial(port))
      const hash = createHash("sha1")
      const slots = new Set<ArrayBufferLike>()
      let received = 0
      while (received < data.length) {
        const chunks = yield* pull
        for (const chunk of chunks) {
          hash.update(chunk) // copies what it keeps, as every reader must
          slots.add(chunk.buffer)
          received += chunk.length
        }
      }
      assert.strictEqual(received, data.length)
      assert.strictEqual(hash.digest("hex"), createHash("sha1").update(data).digest("hex"))
      // Reused: far fewer slots than reads of 64 KiB at most.
      assert.isBelow(slots.size, data.length / (64 * 1024) / 4)
    }).pipe(Effect.scoped))

  it.live("a reader that stops pulling holds the sender back: the connection stops reading", () =>
    Effect.gen(function*() {
      const total = 256 * 1024 * 1024
      const sender = { waiting: false, written: 0 }
      const block = Buffer.alloc(1024 * 1024, 7)
      const port = yield* server((socket) => {
        const write = () => {
          sender.waiting = false
          while (sender.written < total) {
            sender.written += block.length
            if (!socket.write(block)) {
              sender.waiting = true
              return socket.once("drain", write)
            }
          }
        }
        write()
      })
      const pull = yield* Socket.readerBytes(dial(port))
      let received = 0
      for (const chunk of yield* pull) received += chunk.length
      // Stuck: waiting to write, with no progress over a second of polls. (A connection that kept
      // reading would take all 256 MiB in well under that, and never leave the sender waiting.)
      let last = -1
      let still = 0
      yield* waitUntil(() => {
        still = sender.waiting && sender.written === last ? still + 1 : 0
        last = sender.written
        return still >= 20
      }, { timeoutMillis: 30_000, intervalMillis: 50, message: () => "the sender was never held back" })
      assert.isBelow(sender.written, 64 * 1024 * 1024)
      // And the rest comes once we pull again.
      while (received < total) {
        for (const chunk of yield* pull) received += chunk.length
      }
      assert.strictEqual(received, total)
    }).pipe(Effect.scoped))

  it.live("the peer hanging up fails the pull with a close, after the bytes it sent", () =>
    Effect.gen(function*() {
      const port = yield* server((socket) => socket.end("bye"))
      const pull = yield* Socket.readerBytes(dial(port))
      const chunks = yield* pull
      assert.strictEqual(Buffer.concat(chunks).toString(), "bye")
      const error = yield* Effect.flip(pull)
      assert.strictEqual(error.reason._tag, "SocketCloseError")
    }).pipe(Effect.scoped))

  it.live("a refused dial fails acquiring the reader with an open error", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const error = yield* Effect.flip(Effect.asVoid(Socket.readerBytes(dial(port))))
      assert.strictEqual(error.reason._tag, "SocketOpenError")
    }).pipe(Effect.scoped))
})
