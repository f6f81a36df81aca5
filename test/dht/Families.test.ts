/**
 * The DHT on both families (BEP 32) and its node ids (BEP 42), on an
 * in-memory UDP network under TestClock, with scripted remote nodes at
 * public (documentation) addresses, which BEP 42 does not exempt.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Result, Scope, Stream } from "effect"
import { join } from "node:path"
import * as NetAddress from "effect/net/NetAddress"
import * as Dht from "../../src/dht/Dht.ts"
import * as Krpc from "../../src/dht/Krpc.ts"
import * as SecureNodeId from "../../src/dht/SecureNodeId.ts"
import * as MemoryUdp from "../../src/peer/MemoryUdp.ts"
import * as CompactPeer from "../../src/protocol/CompactPeer.ts"
import { tempDir } from "../util/Files.ts"
import { answering, memoryDht, queriesOf, remoteNode, settle } from "./memory.ts"

const ours = { ipv4: "192.0.2.1", ipv6: "2001:db8::1" }
const infoHash = new Uint8Array(20).fill(7)
const idOf = (n: number) => new Uint8Array(20).fill(n)

/** A scripted node at `from` that sends one query to our node at `to` and gives back the answer. */
const ask = (network: MemoryUdp.Network, from: string, to: string, query: Krpc.Query) =>
  Effect.gen(function*() {
    const socket = yield* network.socket(from, 7000)
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    yield* writer.write({
      payload: Krpc.encode({ _tag: "Query", transactionId: new Uint8Array([1, 2]), query, readOnly: false }),
      address: NetAddress.inetAddressFromIpStringUnsafe(to, 6881)
    })
    // Our node may ping the asker before it answers; the answer is among the first few datagrams.
    for (let i = 0; i < 10; i++) {
      for (const { payload } of yield* reader.pull) {
        const message = Result.getOrThrow(Krpc.decode(payload))
        if (message._tag === "Response") return message.response
      }
    }
    return assert.fail("no answer among the first 10 datagrams")
  }).pipe(Effect.scoped)

const hosts = (nodes: ReadonlyArray<{ readonly host: string }>) => nodes.map(({ host }) => host).sort()

describe("Dht on IPv4 and IPv6 (BEP 32)", () => {
  it.effect("answers with the nodes of the families `want` names, else of the one asked over; values by family", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const node4 = yield* remoteNode(network, "192.0.2.2", answering, 6881, idOf(4))
      const node6 = yield* remoteNode(network, "2001:db8::2", answering, 6881, idOf(6))
      const dht = yield* memoryDht(network, { bootstrap: [node4.address, node6.address] }, ours)
      yield* settle
      assert.strictEqual(yield* dht.nodes, 2, "one node in each family's table")
      assert.deepStrictEqual(
        (yield* dht.addresses).map(CompactPeer.format),
        ["192.0.2.1:6881", "[2001:db8::1]:6881"]
      )

      const findNode = (want?: Krpc.Want): Krpc.Query => ({
        _tag: "FindNode",
        id: idOf(9),
        target: idOf(1),
        ...(want === undefined ? {} : { want })
      })
      assert.deepStrictEqual(hosts((yield* ask(network, "2001:db8::3", ours.ipv6, findNode())).nodes), ["2001:db8::2"])
      assert.deepStrictEqual(hosts((yield* ask(network, "192.0.2.3", ours.ipv4, findNode())).nodes), ["192.0.2.2"])
      assert.deepStrictEqual(
        hosts((yield* ask(network, "2001:db8::3", ours.ipv6, findNode(["n4", "n6"]))).nodes),
        ["192.0.2.2", "2001:db8::2"]
      )
      const answer = yield* ask(network, "192.0.2.3", ours.ipv4, findNode(["n6"]))
      assert.deepStrictEqual(hosts(answer.nodes), ["2001:db8::2"])
      assert.deepStrictEqual(answer.requester, { host: "192.0.2.3", port: 7000 }, "BEP 42's ip: the querier's address")

      // Peers announced over each family; get_peers gives those of the family it came over.
      for (const host of ["2001:db8::4", "192.0.2.4"]) {
        const { token } = yield* ask(network, host, host.includes(":") ? ours.ipv6 : ours.ipv4, {
          _tag: "GetPeers",
          id: idOf(9),
          infoHash
        })
        yield* ask(network, host, host.includes(":") ? ours.ipv6 : ours.ipv4, {
          _tag: "AnnouncePeer",
          id: idOf(9),
          infoHash,
          port: 6000,
          impliedPort: false,
          token: token!
        })
      }
      const getPeers: Krpc.Query = { _tag: "GetPeers", id: idOf(9), infoHash }
      assert.deepStrictEqual((yield* ask(network, "2001:db8::5", ours.ipv6, getPeers)).values, [
        { host: "2001:db8::4", port: 6000 }
      ])
      assert.deepStrictEqual((yield* ask(network, "192.0.2.5", ours.ipv4, getPeers)).values, [
        { host: "192.0.2.4", port: 6000 }
      ])
    }))

  it.effect("fills the IPv6 table from an IPv4 node's nodes6, and looks up peers in both families", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const peer6 = { host: "2001:db8::99", port: 51413 }
      const node6 = yield* remoteNode(
        network,
        "2001:db8::2",
        (message, id) => answering(message, id, message._tag === "Query" ? { values: [peer6] } : {}),
        6881,
        idOf(6)
      )
      const node4 = yield* remoteNode(
        network,
        "192.0.2.2",
        (message, id) =>
          answering(message, id, {
            nodes: [{ id: node6.id, ...node6.address }],
            values: [{ host: "192.0.2.99", port: 1 }]
          }),
        6881,
        idOf(4)
      )
      const dht = yield* memoryDht(network, { bootstrap: [node4.address] }, ours)
      yield* settle
      const [bootstrap] = queriesOf(node4.received)
      assert(bootstrap?.query._tag === "FindNode")
      assert.deepStrictEqual(bootstrap.query.want, ["n4", "n6"], "with both families, queries want both")
      assert.deepStrictEqual(queriesOf(node6.received).map(({ query }) => query._tag), ["Ping"])
      assert.strictEqual(yield* dht.nodes, 2, "the IPv6 node answered our IPv6 node's ping")

      const found = yield* Stream.runCollect(dht.lookup(infoHash))
      assert.deepStrictEqual(found.map(CompactPeer.format).sort(), ["192.0.2.99:1", "[2001:db8::99]:51413"])
    }))

  it.effect("saves both ids and both tables, and starts from them again", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const stateFile = join(yield* tempDir("dht-families"), "dht.state")
      const node4 = yield* remoteNode(network, "192.0.2.2", answering, 6881, idOf(4))
      const node6 = yield* remoteNode(network, "2001:db8::2", answering, 6881, idOf(6))
      const scope = yield* Scope.make()
      const first = yield* memoryDht(network, { stateFile, bootstrap: [node4.address, node6.address] }, ours).pipe(
        Scope.provide(scope)
      )
      yield* settle
      const ids = [first.nodeId, yield* first.addresses]
      yield* Scope.close(scope, Exit.void)

      const again = yield* memoryDht(network, { stateFile }, ours)
      yield* settle
      assert.deepStrictEqual([again.nodeId, yield* again.addresses], ids)
      assert.strictEqual(yield* again.nodes, 2, "the saved node of each family answered again")
      // Each run looked up its IPv6 id, starting from the one IPv6 node: the same id, the saved node.
      const lookups = queriesOf(node6.received).filter(({ query }) => query._tag === "FindNode")
      assert.strictEqual(lookups.length, 2)
      assert.deepStrictEqual(lookups[1]!.query.id, lookups[0]!.query.id)
      assert.notDeepEqual(lookups[0]!.query.id, first.nodeId, "an id of its own")
    }))

  it.effect("an IPv4-only node asks without want and answers IPv4 nodes only", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const node4 = yield* remoteNode(network, "192.0.2.2", answering, 6881, idOf(4))
      yield* memoryDht(network, { bootstrap: [node4.address] }, { ipv4: ours.ipv4 })
      yield* settle
      const [bootstrap] = queriesOf(node4.received)
      assert(bootstrap?.query._tag === "FindNode")
      assert.isUndefined(bootstrap.query.want)
      const answer = yield* ask(network, "192.0.2.3", ours.ipv4, {
        _tag: "FindNode",
        id: idOf(9),
        target: idOf(1),
        want: ["n4", "n6"]
      })
      assert.deepStrictEqual(hosts(answer.nodes), ["192.0.2.2"])
    }))

  it.effect("with no socket at all, a DhtError saying so", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const error = yield* Effect.flip(memoryDht(network, {}, {}))
      assert.strictEqual(error._tag, "DhtError")
      assert.include(error.message, "no address to bind")
    }))
})

describe("Dht node ids (BEP 42)", () => {
  const external = "198.51.100.7"

  it.effect("takes an id that fits our address once 3 nodes agree on it, keeping its table", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const telling = (message: Krpc.Message, id: Uint8Array) =>
        answering(message, id, { requester: { host: external, port: 6881 } })
      const nodes = yield* Effect.forEach(
        ["203.0.113.2", "203.0.113.3", "203.0.113.4"],
        (host, i) => remoteNode(network, host, telling, 6881, idOf(0x10 + i))
      )
      const dht = yield* memoryDht(
        network,
        { bootstrap: nodes.slice(0, Dht.ADDRESS_VOTES - 1).map((n) => n.address) },
        { ipv4: ours.ipv4 }
      )
      yield* settle
      const before = dht.nodeId
      assert.isFalse(SecureNodeId.conforms(before, CompactPeer.ipBytes(external)!))
      assert.strictEqual(yield* dht.nodes, 2)
      yield* dht.addNode(nodes[2]!.address)
      yield* settle
      assert.isTrue(SecureNodeId.conforms(dht.nodeId, CompactPeer.ipBytes(external)!), "a third vote: a new id")
      assert.strictEqual(yield* dht.nodes, 3, "the nodes stay")
      // The new id is in the queries that follow (the lookup of our new id).
      const last = queriesOf(nodes[0]!.received).at(-1)!.query
      assert.deepStrictEqual(last.id, dht.nodeId)
    }))

  it.effect("peers telling us our address (BEP 10 yourip) vote as nodes do: the third agreeing one gives a new id", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const dht = yield* memoryDht(network, {}, { ipv4: ours.ipv4 })
      const fits = () => SecureNodeId.conforms(dht.nodeId, CompactPeer.ipBytes(external)!)
      yield* dht.addressSeen(external, "203.0.113.2")
      yield* dht.addressSeen(external, "203.0.113.2") // the same peer again: still one vote
      yield* dht.addressSeen(external, "203.0.113.3")
      yield* dht.addressSeen("2001:db8::7", "203.0.113.5") // another family's address: no vote
      assert.isFalse(fits(), "two votes")
      yield* dht.addressSeen(external, "203.0.113.4")
      assert.isTrue(fits(), "a third vote: a new id")
    }))

  it.effect("votes from local addresses, or for one, do not count", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const local = yield* Effect.forEach(
        ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
        (host, i) =>
          remoteNode(
            network,
            host,
            (m, id) => answering(m, id, { requester: { host: external, port: 1 } }),
            6881,
            idOf(i + 1)
          )
      )
      const localAddress = yield* Effect.forEach(
        ["203.0.113.2", "203.0.113.3", "203.0.113.4"],
        (host, i) =>
          remoteNode(
            network,
            host,
            (m, id) => answering(m, id, { requester: { host: "192.168.1.5", port: 1 } }),
            6881,
            idOf(i + 5)
          )
      )
      const dht = yield* memoryDht(
        network,
        { bootstrap: [...local, ...localAddress].map((n) => n.address) },
        { ipv4: ours.ipv4 }
      )
      const before = new Uint8Array(dht.nodeId)
      yield* settle
      assert.strictEqual(yield* dht.nodes, 6)
      assert.deepStrictEqual(dht.nodeId, before)
    }))

  it.effect("with requireSecureIds, nodes at public addresses whose ids do not fit stay out of the table", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const host = "203.0.113.9"
      const fitting = SecureNodeId.make(CompactPeer.ipBytes(host)!, idOf(0x33))
      const other = yield* remoteNode(network, "203.0.113.8", answering, 6881, idOf(0x33))
      const conforming = yield* remoteNode(network, host, answering, 6881, fitting)
      const local = yield* remoteNode(network, "10.0.0.2", answering, 6881, idOf(0x44))
      const strict = yield* memoryDht(network, { requireSecureIds: true }, { ipv4: ours.ipv4 })
      for (const node of [other, conforming, local]) yield* strict.addNode(node.address)
      yield* settle
      assert.strictEqual(yield* strict.nodes, 2, "the conforming node and the exempt local one")
      assert.isNotEmpty(other.received, "it was asked, and answered")

      const lenient = yield* memoryDht(network, {}, { ipv4: "192.0.2.50" })
      for (const node of [other, conforming, local]) yield* lenient.addNode(node.address)
      yield* settle
      assert.strictEqual(yield* lenient.nodes, 3, "without the option, preferred but let in")
    }))
})
