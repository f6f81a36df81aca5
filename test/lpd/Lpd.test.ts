/**
 * Local Service Discovery: timing and filtering under TestClock on an
 * in-memory network (test/util/MemoryUdp.ts simulates multicast), then two
 * instances over real multicast on the loopback interface.
 *
 * Multicast on loopback: Linux delivers a group joined on 127.0.0.1 to every
 * socket on this machine that joined it there, even though `lo` lacks the
 * MULTICAST flag; the instances send with the multicast interface 127.0.0.1
 * and TTL 1, so nothing goes out on another interface (checked: eth0's
 * transmit counter stays put over 500 announces). A kernel that refused
 * would need `ip link set lo multicast on` (root).
 */
import * as NodeDatagramSocket from "@effect/platform-node/NodeDatagramSocket"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Random, Result, Stream } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import { TestClock } from "effect/testing"
import { Network } from "../../src/peer/Network.ts"
import * as Lpd from "../../src/lpd/Lpd.ts"
import * as LpdMessage from "../../src/lpd/LpdMessage.ts"
import { eventually } from "../dht/fixtures.ts"
import * as MemoryUdp from "../../src/peer/MemoryUdp.ts"

const hashA = "aa".repeat(20)
const hashB = "bb".repeat(20)

const build = (layer: Layer.Layer<Lpd.Lpd, Lpd.LpdError, Network>) =>
  Effect.map(
    Layer.build(layer.pipe(Layer.provide(Network.layerNode))),
    (context) => context.mapUnsafe.get(Lpd.Lpd.key) as Lpd.Lpd["Service"]
  )

/** Runs `stream` in the test's scope, collecting what it emits. */
const collect = (stream: Stream.Stream<Lpd.Address>) =>
  Effect.gen(function*() {
    const found: Array<Lpd.Address> = []
    const fiber = yield* Stream.runForEach(stream, (peer) => Effect.sync(() => found.push(peer))).pipe(
      Effect.forkScoped
    )
    return { found, fiber }
  })

interface Heard {
  readonly at: number
  readonly from: string
  readonly announce: LpdMessage.Announce
}

/** A plain socket joined to `group`: records the announces it hears, with the time, and sends raw datagrams to the group. */
const observer = (socket: DatagramSocket.DatagramSocket, group: string, localInterface?: NetAddress.Ipv4Address) =>
  Effect.gen(function*() {
    const groupAddress = Result.getOrThrow(NetAddress.ipv4FromString(group))
    if (!NetAddress.isMulticast(groupAddress)) return yield* Effect.die(`${group} is not a multicast group`)
    const reader = yield* socket.reader
    yield* reader.joinMulticast({ group: groupAddress, interface: localInterface })
    const writer = yield* socket.writer
    const heard: Array<Heard> = []
    yield* Effect.gen(function*() {
      for (const { address, payload } of yield* reader.pull) {
        const decoded = LpdMessage.decode(payload)
        if (Result.isFailure(decoded)) continue
        heard.push({
          at: yield* Clock.currentTimeMillis,
          from: NetAddress.formatIp(address.address),
          announce: decoded.success
        })
      }
    }).pipe(Effect.forever, Effect.forkScoped)
    const destination = NetAddress.inetAddressUnsafe(groupAddress, reader.address.port)
    return {
      port: reader.address.port,
      heard,
      send: (payload: Uint8Array) => writer.write({ payload, address: destination })
    }
  })

/** Lets the forked fibers run (no time passes on the in-memory network). */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

describe("Lpd on an in-memory network", () => {
  const group = Lpd.defaultSettings.host
  const setup = Effect.gen(function*() {
    const network = yield* MemoryUdp.makeNetwork
    const instance = (host: string) =>
      Effect.flatMap(network.socket(host, 6771), (socket) => build(Lpd.Lpd.layerWithSocket({}, socket)))
    const listener = yield* Effect.flatMap(network.socket("10.0.0.9", 6771), (socket) => observer(socket, group))
    return { instance, listener }
  })
  const timeline = (heard: ReadonlyArray<Heard>) =>
    heard.map(({ announce, at }) => `${at / 1000}s ${announce.infoHashes.join(",").slice(0, 2)}:${announce.port}`)

  it.effect("announces at once and every 5 minutes while the stream runs, in the BEP 14 format", () =>
    Effect.gen(function*() {
      const { instance, listener } = yield* setup
      const a = yield* instance("10.0.0.1")
      const { fiber } = yield* collect(a.peers(hashA.toUpperCase(), 7001))
      yield* settle
      assert.deepStrictEqual(timeline(listener.heard), ["0s aa:7001"])
      const [first] = listener.heard
      assert.strictEqual(first!.from, "10.0.0.1")
      assert.strictEqual(first!.announce.host, "239.192.152.143:6771")
      assert.deepStrictEqual(first!.announce.infoHashes, [hashA])
      assert.isString(first!.announce.cookie)

      yield* TestClock.adjust("299999 millis")
      yield* settle
      assert.strictEqual(listener.heard.length, 1)
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepStrictEqual(timeline(listener.heard), ["0s aa:7001", "300s aa:7001"])

      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("15 minutes")
      yield* settle
      assert.strictEqual(listener.heard.length, 2, "no announce once the stream stopped")
    }))

  it.effect("takes its cookie from Effect's Random: instances built with the same seed send the same one", () =>
    Effect.gen(function*() {
      const { instance, listener } = yield* setup
      const a = yield* instance("10.0.0.1").pipe(Random.withSeed("lpd"))
      const b = yield* instance("10.0.0.2").pipe(Random.withSeed("lpd"))
      yield* collect(a.peers(hashA, 7001))
      yield* collect(b.peers(hashB, 7002))
      yield* settle
      const cookies = listener.heard.map(({ announce }) => announce.cookie)
      assert.strictEqual(cookies.length, 2)
      assert.match(cookies[0]!, /^[0-9a-f]{16}$/)
      assert.strictEqual(cookies[1], cookies[0])
    }))

  it.effect("announces an info-hash at most once a minute, however many streams ask", () =>
    Effect.gen(function*() {
      const { instance, listener } = yield* setup
      const a = yield* instance("10.0.0.1")
      yield* collect(a.peers(hashA, 7001))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      yield* collect(a.peers(hashA, 7001))
      yield* collect(a.peers(hashB, 7001)) // another info-hash is not held back
      yield* settle
      assert.deepStrictEqual(timeline(listener.heard), ["0s aa:7001", "10s bb:7001"])
      yield* TestClock.adjust("49999 millis")
      yield* settle
      assert.strictEqual(listener.heard.length, 2)
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.deepStrictEqual(timeline(listener.heard), ["0s aa:7001", "10s bb:7001", "60s aa:7001"])
      yield* TestClock.adjust("340 seconds")
      yield* settle
      assert.deepStrictEqual(timeline(listener.heard), [
        "0s aa:7001",
        "10s bb:7001",
        "60s aa:7001",
        "300s aa:7001",
        "310s bb:7001",
        "360s aa:7001"
      ])
    }))

  it.effect("finds the peers announcing the same info-hash, including those heard before the stream started", () =>
    Effect.gen(function*() {
      const { instance } = yield* setup
      const a = yield* instance("10.0.0.1")
      const b = yield* instance("10.0.0.2")
      const aOnA = yield* collect(a.peers(hashA, 7001))
      const bOnB = yield* collect(b.peers(hashB, 7003))
      yield* settle
      const aOnB = yield* collect(b.peers(hashA, 7002))
      yield* settle
      assert.deepStrictEqual(aOnA.found, [{ host: "10.0.0.2", port: 7002 }])
      assert.deepStrictEqual(aOnB.found, [{ host: "10.0.0.1", port: 7001 }])
      assert.deepStrictEqual(bOnB.found, [])
    }))

  it.effect("drops garbage, oversized datagrams and replays of its own cookie, and keeps listening", () =>
    Effect.gen(function*() {
      const { instance, listener } = yield* setup
      const a = yield* instance("10.0.0.1")
      const { found } = yield* collect(a.peers(hashA, 7001))
      yield* settle
      const ours = listener.heard[0]!.announce
      const announce = (port: number, cookie: string | undefined) =>
        LpdMessage.encode({ host: ours.host, port, infoHashes: [hashA], cookie })
      yield* listener.send(new TextEncoder().encode("BT-SEARCH * HTTP/1.1\r\nPort: nope\r\n\r\n"))
      yield* listener.send(new Uint8Array(5000).fill(0x42))
      yield* listener.send(announce(6001, ours.cookie))
      yield* listener.send(announce(6002, "someone else"))
      yield* listener.send(announce(6003, undefined))
      yield* settle
      assert.deepStrictEqual(found, [{ host: "10.0.0.9", port: 6002 }, { host: "10.0.0.9", port: 6003 }])
    }))

  it.effect("fails with an LpdError naming a group that is not multicast", () =>
    Effect.gen(function*() {
      const network = yield* MemoryUdp.makeNetwork
      const socket = yield* network.socket("10.0.0.1", 6771)
      const error = yield* Effect.flip(build(Lpd.Lpd.layerWithSocket({ host: "10.1.2.3" }, socket)))
      assert.strictEqual(error._tag, "LpdError")
      assert.strictEqual(
        error.message,
        "cannot start Local Service Discovery on 10.1.2.3:6771: 10.1.2.3 is not an IPv4 multicast group"
      )
    }))
})

describe("Lpd over multicast on 127.0.0.1", () => {
  const group = "239.255.14.14"

  it.live(
    "two instances find each other for a shared info-hash, never themselves nor other info-hashes",
    () =>
      Effect.gen(function*() {
        // The observer holds a free port for the group; the instances share it (SO_REUSEADDR).
        const socket = yield* NodeDatagramSocket.make({ bind: { address: "0.0.0.0", port: 0 }, reuseAddress: true })
        const listener = yield* observer(socket, group, NetAddress.ipv4Loopback)
        const settings = { host: group, port: listener.port, interface: "127.0.0.1" }
        const a = yield* build(Lpd.Lpd.layer(settings))
        const b = yield* build(Lpd.Lpd.layer(settings))
        const aOnA = yield* collect(a.peers(hashA, 7001))
        const bOnB = yield* collect(b.peers(hashB, 7003))
        const aOnB = yield* collect(b.peers(hashA, 7002))
        yield* eventually(
          Effect.sync(() => aOnA.found.length > 0 && aOnB.found.length > 0 && listener.heard.length === 3),
          "both instances to find each other"
        )
        assert.deepStrictEqual(aOnA.found, [{ host: "127.0.0.1", port: 7002 }])
        assert.deepStrictEqual(aOnB.found, [{ host: "127.0.0.1", port: 7001 }])
        assert.deepStrictEqual(bOnB.found, [])
        assert.sameMembers(listener.heard.map(({ announce }) => announce.port), [7001, 7002, 7003])
        for (const { announce, from } of listener.heard) {
          assert.strictEqual(from, "127.0.0.1")
          assert.strictEqual(announce.host, `${group}:${listener.port}`)
        }
      }),
    { timeout: 20_000 }
  )

  it.live("fails with an LpdError when the interface is not an address", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(build(Lpd.Lpd.layer({ host: group, port: 0, interface: "eth-zero" })))
      assert.include(error.message, "the interface eth-zero is not an IPv4 address")
    }))
})
