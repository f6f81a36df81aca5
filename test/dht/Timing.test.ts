/**
 * The DHT's timers under TestClock, on an in-memory UDP network with
 * scripted remote nodes: query timeouts and transaction matching, the
 * bootstrap and the 15-minute bucket refresh.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Random, Stream } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { TestClock } from "effect/testing"
import * as Krpc from "../../src/dht/Krpc.ts"
import * as MemoryUdp from "../../src/peer/MemoryUdp.ts"
import { answering, memoryDht, ourHost, queriesOf, remoteNode, settle, silent } from "./memory.ts"

describe("Dht timing", () => {
  it.effect("a query to a silent node fails after 2 seconds; the node is not added", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const dht = yield* memoryDht(network)
      const remote = yield* remoteNode(network, "10.0.0.2", silent)
      yield* dht.addNode(remote.address) // returns at once: the ping runs in the background
      yield* TestClock.adjust("1999 millis")
      const [ping] = remote.received
      assert.deepStrictEqual(queriesOf(remote.received).map(({ query }) => query._tag), ["Ping"])
      yield* TestClock.adjust("1 milli")
      // Answered at 2000 ms: too late, the query has failed.
      yield* remote.writer.write({
        payload: Krpc.encode(answering(ping!.message, remote.id)!),
        address: NetAddress.inetAddressFromIpStringUnsafe(ourHost, 6881)
      })
      yield* settle
      assert.strictEqual(yield* dht.nodes, 0)

      // Answered at 1999 ms: in time, the node is added.
      const slow = yield* remoteNode(network, "10.0.0.3", silent)
      yield* dht.addNode(slow.address)
      yield* TestClock.adjust("1999 millis")
      yield* slow.writer.write({
        payload: Krpc.encode(answering(slow.received[0]!.message, slow.id)!),
        address: NetAddress.inetAddressFromIpStringUnsafe(ourHost, 6881)
      })
      yield* settle
      assert.strictEqual(yield* dht.nodes, 1)
    }))

  it.effect("an answer counts only with the query's transaction id and from the address asked", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const dht = yield* memoryDht(network)
      const wrongId = yield* remoteNode(network, "10.0.0.2", (message, id) => {
        const answer = answering(message, id)
        return answer && { ...answer, transactionId: new Uint8Array([9, 9, 9]) }
      })
      const asked = yield* remoteNode(network, "10.0.0.3", silent)
      const impostor = yield* remoteNode(network, "10.0.0.4", silent)
      const fiber = yield* Effect.forkChild(
        Effect.all([dht.addNode(wrongId.address), dht.addNode(asked.address)], { concurrency: 2 })
      )
      yield* TestClock.adjust("1 second")
      // The impostor answers the ping that went to 10.0.0.3.
      const [ping] = asked.received
      assert(ping !== undefined)
      yield* impostor.writer.write({
        payload: Krpc.encode(answering(ping.message, impostor.id)!),
        address: NetAddress.inetAddressFromIpStringUnsafe(ourHost, 6881)
      })
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* dht.nodes, 0)

      const honest = yield* remoteNode(network, "10.0.0.5", answering)
      yield* dht.addNode(honest.address)
      yield* settle
      assert.strictEqual(yield* dht.nodes, 1, "answered within the timeout")
    }))

  it.effect("bootstraps with find_node for our own id, and refreshes a bucket unchanged for 15 minutes", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const remote = yield* remoteNode(network, "10.0.0.2", answering)
      const dht = yield* memoryDht(network, { bootstrap: [remote.address] })
      yield* settle
      const [bootstrap] = queriesOf(remote.received)
      assert(bootstrap?.query._tag === "FindNode")
      assert.deepStrictEqual(bootstrap.query.target, dht.nodeId)
      assert.deepStrictEqual(bootstrap.query.id, dht.nodeId)
      assert.strictEqual(yield* dht.nodes, 1)

      yield* TestClock.adjust("14 minutes")
      assert.strictEqual(queriesOf(remote.received).length, 1, "no traffic while the bucket is fresh")
      yield* TestClock.adjust("1 minute")
      const refresh = queriesOf(remote.received).slice(1)
      assert.deepStrictEqual(refresh.map(({ at, query }) => [at, query._tag]), [[15 * 60_000, "FindNode"]])
      // The answer changed the bucket: the next refresh is 15 minutes later.
      yield* TestClock.adjust("14 minutes")
      assert.strictEqual(queriesOf(remote.received).length, 2)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(queriesOf(remote.received).map(({ at }) => at), [0, 15 * 60_000, 30 * 60_000])
    }))

  it.effect("takes its node id and transaction ids from Effect's Random: the same seed, the same ones", () =>
    Effect.gen(function*() {
      const seededRun = Effect.gen(function*() {
        const network = yield* MemoryUdp.makeNetwork
        const remote = yield* remoteNode(network, "10.0.0.2", answering)
        const dht = yield* memoryDht(network, { bootstrap: [remote.address] })
        yield* settle
        return { nodeId: dht.nodeId, transactionIds: remote.received.map(({ message }) => message.transactionId) }
      }).pipe(Random.withSeed("dht"))
      const first = yield* seededRun
      assert.strictEqual(first.nodeId.length, 20)
      assert.isNotEmpty(first.transactionIds)
      assert.deepStrictEqual(yield* seededRun, first)
    }))

  it.effect("a lookup with no node answering ends after the query timeout, empty", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const remote = yield* remoteNode(network, "10.0.0.2", silent)
      const dht = yield* memoryDht(network, { bootstrap: [remote.address] })
      const fiber = yield* Effect.forkChild(
        Effect.andThen(
          Stream.runCollect(dht.lookup(new Uint8Array(20).fill(1))),
          (found) => Effect.map(Clock.currentTimeMillis, (at) => ({ found, at }))
        )
      )
      yield* TestClock.adjust("2 seconds")
      const { at, found } = yield* Fiber.join(fiber)
      assert.deepStrictEqual(found, [])
      assert.strictEqual(at, 2000)
      assert.deepStrictEqual(queriesOf(remote.received).map(({ query }) => query._tag), ["FindNode", "GetPeers"])
    }))

  it.effect("a lookup that keeps hearing of closer nodes stops after 100 queries", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      // 150 nodes that each answer with 8 others, ever closer to the target.
      const ports = Array.from({ length: 150 }, (_, i) => i + 1)
      let next = 0
      const hydra = (message: Krpc.Message, id: Uint8Array): Krpc.Message | undefined => {
        if (message._tag !== "Query" || message.query._tag !== "GetPeers") return answering(message, id)
        const target = message.query.infoHash
        const nodes = Array.from({ length: 8 }, () => {
          const closer = new Uint8Array(target)
          new DataView(closer.buffer).setUint32(16, 1_000_000 - ++next)
          return { id: closer, host: "10.0.1.1", port: ports[next % ports.length]! }
        })
        return {
          _tag: "Response",
          transactionId: message.transactionId,
          response: { id, nodes, values: [], token: undefined }
        }
      }
      const remotes = yield* Effect.forEach(ports, (port) => remoteNode(network, "10.0.1.1", hydra, port))
      const dht = yield* memoryDht(network, { bootstrap: [remotes[0]!.address] })
      const found = yield* Stream.runCollect(dht.lookup(new Uint8Array(20).fill(0x42)))
      assert.deepStrictEqual(found, [])
      const getPeers = remotes.flatMap(({ received }) => queriesOf(received)).filter(({ query }) =>
        query._tag === "GetPeers"
      )
      assert.strictEqual(getPeers.length, 100)
    }))
})
