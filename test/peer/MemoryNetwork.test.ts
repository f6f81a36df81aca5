import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Queue } from "effect"
import * as MemoryNetwork from "../../src/peer/MemoryNetwork.ts"
import { type Connection, Network } from "../../src/peer/Network.ts"

/** The Network of `host` on `network`. */
const on = (network: MemoryNetwork.MemoryNetwork, host: string) =>
  Effect.service(Network).pipe(Effect.provide(network.layer(host)))

describe("MemoryNetwork", () => {
  it.effect("a dial reaches the listener at host:port, which sees the dialler's host; bytes flow both ways", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make()
      const server = yield* on(network, "10.0.0.1")
      const client = yield* on(network, "10.0.0.2")
      const accepted = yield* Queue.unbounded<Connection>()
      const port = yield* server.listen({ port: 6881 }, (c) => Queue.offerUnsafe(accepted, c))
      assert.strictEqual(port, 6881)
      const socket = yield* client.connect({ host: "10.0.0.1", port }, 1000)
      const connection = yield* Queue.take(accepted)
      assert.strictEqual(connection.host, "10.0.0.2")
      yield* (yield* socket.writer).write(Uint8Array.of(1, 2, 3))
      assert.deepStrictEqual(yield* (yield* connection.socket.reader).pull, [Uint8Array.of(1, 2, 3)])
    }))

  it.effect("a dial where nothing listens is refused; a strict listen on a taken port fails", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make()
      const server = yield* on(network, "10.0.0.1")
      const refused = yield* (yield* on(network, "10.0.0.2")).connect({ host: "10.0.0.1", port: 6881 }, 1000)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(refused.reader)))
      yield* server.listen({ port: 6881 }, () => {})
      const again = yield* Effect.exit(server.listen({ port: 6881, strict: true }, () => {}))
      assert.isTrue(Exit.isFailure(again))
      assert.notStrictEqual(yield* server.listen({ port: 6881 }, () => {}), 6881, "not strict: another port")
    }))
})
