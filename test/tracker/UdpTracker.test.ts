import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Layer, Queue } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as DatagramSocket from "effect/socket/DatagramSocket"
import { TestClock } from "effect/testing"
import * as HttpTracker from "../../src/tracker/HttpTracker.ts"
import * as Tracker from "../../src/tracker/Tracker.ts"
import * as UdpTracker from "../../src/tracker/UdpTracker.ts"
import { peerId, request, trackerServer, trackerServerOn, udpServer } from "./fixtures.ts"

import { Network } from "../../src/peer/Network.ts"
const layer = (options: UdpTracker.Options = {}) =>
  Tracker.Tracker.layer.pipe(
    Layer.provide([HttpTracker.layerNode, UdpTracker.layerWith(options).pipe(Layer.provide(Network.layerNode))])
  )

// By default a lost datagram fails the test after 15 s instead of retransmitting for an hour.
const announce = (
  url: string,
  overrides: Partial<Tracker.AnnounceRequest> = {},
  options: UdpTracker.Options = { maxRetransmits: 0 }
) => Tracker.Tracker.use((tracker) => tracker.announce(url, request(overrides))).pipe(Effect.provide(layer(options)))

// Packet helpers for scripted trackers -------------------------------------------------

const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const packet = (...words: Array<number>) => {
  const bytes = new Uint8Array(words.length * 4)
  for (const [i, word] of words.entries()) view(bytes).setUint32(i * 4, word)
  return bytes
}

/** A well-behaved tracker's answer to a request: connect gets id 7, announce gets `peers`. */
const answer = (request: Uint8Array, peers = new Uint8Array()) => {
  const action = view(request).getUint32(8)
  const transactionId = view(request).getUint32(12)
  return action === 0
    ? packet(0, transactionId, 0, 7)
    : Buffer.concat([packet(1, transactionId, 1800, 2, 1), peers])
}

interface Sent {
  readonly at: number
  readonly action: number
}

/**
 * An in-memory socket to a scripted tracker: `reply` sees each request and may
 * answer it. Every request is recorded with the (test) time it was sent.
 */
const scripted = (reply: (request: Uint8Array) => Uint8Array | undefined, localHost = "127.0.0.1") =>
  Effect.gen(function*() {
    const sent: Array<Sent> = []
    const open = () =>
      Effect.gen(function*() {
        const inbox = yield* Queue.unbounded<Uint8Array>()
        const tracker = NetAddress.inetAddressFromIpStringUnsafe("127.0.0.1", 6969)
        return DatagramSocket.make({
          reader: Effect.succeed({
            pull: Effect.map(Queue.take(inbox), (payload) => [{ payload, address: tracker }] as const),
            address: NetAddress.inetAddressFromIpStringUnsafe(localHost, 40000),
            dropped: () => 0,
            joinMulticast: () => Effect.die("unused")
          }),
          writer: Effect.succeed({
            write: ({ payload }) =>
              Effect.gen(function*() {
                const bytes = payload as Uint8Array
                sent.push({ at: yield* Clock.currentTimeMillis, action: view(bytes).getUint32(8) })
                const response = reply(bytes)
                if (response !== undefined) yield* Queue.offer(inbox, response)
              }),
            writeAll: () => Effect.die("unused")
          })
        })
      })
    return { sent, open }
  })

describe("UdpTracker", () => {
  it.live("a second peer gets the first one back; stopped removes it (bittorrent-tracker)", () =>
    Effect.gen(function*() {
      const { udp } = yield* trackerServer
      yield* announce(udp, { peerId: peerId(1), port: 7001 })
      const second = yield* announce(udp, { peerId: peerId(2), port: 7002 })
      assert.deepInclude(second.peers, { host: "127.0.0.1", port: 7001 })
      assert.strictEqual(second.incomplete, 2)
      assert.isAbove(second.interval, 0)

      yield* announce(udp, { peerId: peerId(1), port: 7001, event: "stopped" })
      const after = yield* announce(udp, { peerId: peerId(2), port: 7002, event: "none" })
      assert.notDeepInclude(after.peers, { host: "127.0.0.1", port: 7001 })
      assert.strictEqual(after.incomplete, 1)
    }))

  it.live("ignores an answer with the wrong transaction id and takes the right one", () =>
    Effect.gen(function*() {
      const url = yield* udpServer((request, reply) => {
        const right = answer(request, Uint8Array.from([10, 0, 0, 9, 0x1a, 0xe1]))
        const wrong = Uint8Array.from(right)
        view(wrong).setUint32(4, view(right).getUint32(4) ^ 1)
        reply(wrong)
        reply(right)
      })
      const response = yield* announce(url)
      assert.deepStrictEqual(response.peers, [{ host: "10.0.0.9", port: 6881 }])
    }))

  it.effect("times out when only wrong transaction ids come back", () =>
    Effect.gen(function*() {
      const replied = yield* Deferred.make<void>()
      const url = yield* udpServer((request, reply) => {
        const wrong = answer(request)
        view(wrong).setUint32(4, view(wrong).getUint32(4) ^ 1)
        reply(wrong)
        Deferred.doneUnsafe(replied, Effect.void)
      })
      const fiber = yield* announce(url, {}, { maxRetransmits: 0 }).pipe(Effect.flip, Effect.forkChild)
      yield* Deferred.await(replied)
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("15 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "Timeout")
    }))

  it.effect("retransmits after 15·2ⁿ seconds, then gives up", () =>
    Effect.gen(function*() {
      const silent = yield* scripted(() => undefined)
      const fiber = yield* announce("udp://silent.test:6969", {}, { maxRetransmits: 2, open: silent.open }).pipe(
        Effect.flip,
        Effect.forkChild
      )
      const times = () => silent.sent.map((sent) => sent.at)
      yield* TestClock.adjust("14999 millis")
      assert.deepStrictEqual(times(), [0])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(times(), [0, 15_000])
      yield* TestClock.adjust("29999 millis")
      assert.deepStrictEqual(times(), [0, 15_000])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(times(), [0, 15_000, 45_000])
      yield* TestClock.adjust("59999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "Timeout")
      assert.strictEqual(error.message, "tracker udp://silent.test:6969 did not answer within 105 seconds")
      assert.isTrue(silent.sent.every((sent) => sent.action === 0))
    }))

  it.effect("reuses a connection id for 60 seconds", () =>
    Effect.gen(function*() {
      const tracker = yield* scripted((request) => answer(request))
      const options = { open: tracker.open }
      const actions = () => tracker.sent.map((sent) => sent.action)
      yield* Effect.provide(
        Effect.gen(function*() {
          const { announce } = yield* Tracker.Tracker
          yield* announce("udp://silent.test:6969", request())
          assert.deepStrictEqual(actions(), [0, 1])
          yield* TestClock.adjust("59 seconds")
          yield* announce("udp://silent.test:6969", request({ event: "none" }))
          assert.deepStrictEqual(actions(), [0, 1, 1])
          yield* TestClock.adjust("1 seconds")
          yield* announce("udp://silent.test:6969", request({ event: "none" }))
          assert.deepStrictEqual(actions(), [0, 1, 1, 0, 1])
        }),
        layer(options)
      )
    }))

  it.effect("reads 18-byte peers over IPv6 and the tracker's error action", () =>
    Effect.gen(function*() {
      const peer6 = Buffer.from("20010db800000000000000000000000100ff", "hex")
      const tracker = yield* scripted((request) => answer(request, peer6), "::1")
      const response = yield* announce("udp://[::1]:6969", {}, { open: tracker.open })
      assert.deepStrictEqual(response, {
        interval: 1800,
        incomplete: 2,
        complete: 1,
        peers: [{ host: "2001:db8::1", port: 255 }]
      })

      const refusing = yield* scripted((request) =>
        view(request).getUint32(8) === 0
          ? answer(request)
          : Buffer.concat([packet(3, view(request).getUint32(12)), Buffer.from("torrent not registered")])
      )
      const error = yield* Effect.flip(announce("udp://silent.test:6969", {}, { open: refusing.open }))
      assert.strictEqual(error.message, "tracker udp://silent.test:6969 refused the announce: torrent not registered")
    }))

  it.live("over a real socket on ::1: the IPv6 form of the answer, 18-byte peers (BEP 15)", () =>
    Effect.gen(function*() {
      const peers6 = Buffer.from("000000000000000000000000000000011ae1" + "20010db800000000000000000000000100ff", "hex")
      const url = yield* udpServer((request, reply) => reply(answer(request, peers6)), "::1")
      const response = yield* announce(url)
      assert.deepStrictEqual(response.peers, [{ host: "::1", port: 6881 }, { host: "2001:db8::1", port: 255 }])
    }))

  it.live("over IPv6 ([::1]): the announce reaches bittorrent-tracker, which gives our address to other peers", () =>
    Effect.gen(function*() {
      const { http, udp } = yield* trackerServerOn("ipv6")
      assert.match(udp, /^udp:\/\/\[::1\]:\d+$/)
      const first = yield* announce(udp, { peerId: peerId(1), port: 7001 })
      assert.deepStrictEqual(first.peers, [])
      assert.strictEqual(first.incomplete, 1)
      // An HTTP announce (over ::1 too) gets the peer the UDP announce registered, at its IPv6 address.
      const second = yield* Tracker.Tracker.use((tracker) =>
        tracker.announce(http, request({ peerId: peerId(2), port: 7002 }))
      ).pipe(Effect.provide(layer()))
      assert.deepInclude(second.peers, { host: "::1", port: 7001 })
    }))

  it.effect("a udp:// URL without a port is unsupported", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(announce("udp://silent.test/announce"))
      assert.strictEqual(error.reason._tag, "UnsupportedUrl")
    }))
})
