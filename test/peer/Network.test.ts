/**
 * The Node network's listener over real loopback TCP: the connections it accepts are closed
 * (not only half-closed) when their session's scope closes, and at the
 * latest when the listener closes, even while the peer keeps its side open
 * and never hangs up. Else the listener, which waits for its connections,
 * never closes, and neither does the process.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Fiber, Queue, Scope } from "effect"
import * as Net from "node:net"
import { type Connection, Network } from "../../src/peer/Network.ts"
import * as PeerIo from "../../src/peer/PeerIo.ts"
import { freePort, waitUntil } from "../util/Swarm.ts"

/** A peer that never ends its side of the connection (it keeps sending), and whether we closed ours. */
const stubbornPeer = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const state = { ended: false, closed: false }
      const socket = Net.createConnection({ host: "127.0.0.1", port, allowHalfOpen: true })
      socket.on("end", () => (state.ended = true))
      socket.on("close", () => (state.closed = true))
      socket.on("error", () => {})
      socket.write("hello")
      return { state, socket }
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/** A listener in its own scope, with the connections it accepted queued. */
const listening = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const connections = yield* Queue.unbounded<Connection>()
  const network = yield* Effect.provide(Network, Network.layerNode)
  const port = yield* network.listen({ port: 0, host: "127.0.0.1" }, (c) => Queue.offerUnsafe(connections, c)).pipe(
    Scope.provide(scope)
  )
  // The close waits for the connections: it runs apart, so that the test can time it.
  const close = Effect.forkChild(Scope.close(scope, Exit.void))
  return { port, connections, close }
})

/** Waits for the listener's close; if it hangs, the peer hangs up, which ends the close, and the test fails. */
const closesWithin = (fiber: Fiber.Fiber<void>, peer: Net.Socket) =>
  waitUntil(() => fiber.pollUnsafe() !== undefined, {
    timeoutMillis: 5_000,
    message: () => "the listener did not close"
  })
    .pipe(Effect.onError(() => Effect.sync(() => peer.destroy())))

describe("Network.layerNode: listening", () => {
  it.live("a connection is closed with its session's scope; the listener then closes", () =>
    Effect.gen(function*() {
      const listener = yield* listening
      const peer = yield* stubbornPeer(listener.port)
      const connection = yield* Queue.take(listener.connections)
      // A session: reads what the peer sent, then ends (as on a Disconnect or a refused handshake).
      yield* Effect.gen(function*() {
        const reader = yield* connection.socket.reader
        yield* connection.socket.writer
        yield* reader.pull
      }).pipe(Effect.scoped)
      yield* waitUntil(() => peer.state.ended, { timeoutMillis: 5_000, message: () => "the peer was not hung up on" })
      yield* closesWithin(yield* listener.close, peer.socket)
      assert.isTrue(peer.state.ended)
    }), 20_000)

  it.live("connections no session took are closed when the listener closes", () =>
    Effect.gen(function*() {
      const listener = yield* listening
      const peer = yield* stubbornPeer(listener.port)
      yield* Queue.take(listener.connections)
      yield* closesWithin(yield* listener.close, peer.socket)
      yield* waitUntil(() => peer.state.ended, { timeoutMillis: 5_000, message: () => "the peer was not hung up on" })
    }), 20_000)

  it.live(
    "a taken port: the next one is used, or with `strict` a ListenError naming the port",
    () =>
      Effect.gen(function*() {
        const network = yield* Effect.provide(Network, Network.layerNode)
        const taken = yield* network.listen({ port: 0, host: "127.0.0.1" }, () => {})
        const next = yield* network.listen({ port: taken, host: "127.0.0.1" }, () => {})
        assert.notStrictEqual(next, taken)
        const error = yield* Effect.flip(network.listen({ port: taken, host: "127.0.0.1", strict: true }, () => {}))
        assert.strictEqual(error._tag, "ListenError")
        assert.strictEqual(error.port, taken)
        assert.include(error.message, `port ${taken}`)
      }).pipe(Effect.scoped),
    20_000
  )

  it.live("listens on ::1 and dials it: bytes both ways, the peer's host as IPv6", () =>
    Effect.gen(function*() {
      const network = yield* Effect.provide(Network, Network.layerNode)
      const connections = yield* Queue.unbounded<Connection>()
      const port = yield* network.listen({ port: 0, host: "::1" }, (c) => Queue.offerUnsafe(connections, c))
      const dialled = yield* network.connect({ host: "::1", port }, 5_000)
      yield* dialled.reader // dials
      yield* (yield* dialled.writer).write("ping")
      const accepted = yield* Queue.take(connections)
      assert.strictEqual(accepted.host, "::1")
      const reader = yield* accepted.socket.reader
      assert.strictEqual(new TextDecoder().decode((yield* reader.pull)[0] as Uint8Array), "ping")
    }).pipe(
      Effect.scoped,
      Effect.timeoutOrElse({ duration: 10_000, orElse: () => Effect.die(new Error("timed out")) })
    ), 20_000)

  it.live(
    "a dial nobody answers fails when the connection's PeerIo opens, before anything is written",
    () =>
      Effect.gen(function*() {
        const network = yield* Effect.provide(Network, Network.layerNode)
        const port = yield* freePort
        const socket = yield* network.connect({ host: "127.0.0.1", port }, 5_000)
        const error = yield* PeerIo.make(socket, { maxFrame: 1 << 16 }).pipe(
          Effect.flip,
          Effect.timeoutOrElse({
            duration: 5_000,
            orElse: () => Effect.die(new Error("the refused dial did not fail"))
          })
        )
        assert.strictEqual(error._tag, "SocketError")
      }).pipe(Effect.scoped),
    20_000
  )
})
