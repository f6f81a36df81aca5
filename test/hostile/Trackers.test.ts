/**
 * Hostile trackers on loopback (real HTTP and UDP servers): each one's answer
 * is a typed TrackerError naming what was wrong, a huge peer list is capped,
 * and the multitracker loop still gets its peers from an honest tracker in
 * the next tier. (Never-answering trackers: the 15 s HTTP timeout and the
 * UDP retransmission schedule are tested with TestClock in test/tracker/.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as HttpTracker from "../../src/tracker/HttpTracker.ts"
import * as Tracker from "../../src/tracker/Tracker.ts"
import * as UdpTracker from "../../src/tracker/UdpTracker.ts"
import { record } from "../util/SecurityResults.ts"
import { Network } from "../../src/peer/Network.ts"
import { httpServer, request, udpServer } from "../tracker/fixtures.ts"

const live = Tracker.Tracker.layer.pipe(
  Layer.provide([
    HttpTracker.layerNode,
    UdpTracker.layerWith({ maxRetransmits: 0 }).pipe(Layer.provide(Network.layerNode))
  ])
)

const compact = (count: number) => {
  const bytes = Buffer.alloc(count * 6)
  for (let i = 0; i < count; i++) {
    bytes.writeUInt32BE(0x0a000000 + i, i * 6)
    bytes.writeUInt16BE(1 + (i % 60000), i * 6 + 4)
  }
  return bytes
}

/** Answers every UDP request with action `action` and the request's own transaction id. */
const udpAnswering = (action: number) =>
  udpServer((packet, reply) => {
    const answer = Buffer.alloc(16)
    answer.writeUInt32BE(action, 0)
    answer.writeUInt32BE(packet.readUInt32BE(12), 4)
    reply(answer)
  })

describe("hostile trackers", () => {
  it.live(
    "garbage, redirect loops and wrong UDP actions are typed errors; the next tier's tracker is used",
    () =>
      Effect.gen(function*() {
        const garbage = yield* httpServer((_, res) => res.end("\x00\xffd5:peersi-1e<html>"))
        const loop = yield* httpServer((_, res) => res.writeHead(302, { location: "/announce" }).end())
        const wrongAction = yield* udpAnswering(2) // a scrape answer to our connect
        const honest = yield* httpServer((_, res) =>
          res.end(Bencode.encode({ interval: 1800, peers: Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]) }))
        )
        const bad = [`${garbage}/announce`, `${loop}/announce`, wrongAction]
        const errors = yield* Effect.forEach(
          bad,
          (url) => Tracker.Tracker.use((tracker) => tracker.announce(url, request())).pipe(Effect.flip)
        )
        assert.deepStrictEqual(errors.map((e) => e.reason._tag), ["BadResponse", "BadResponse", "BadResponse"])
        assert.match(errors[0]!.message, /invalid bencode at byte 0/)
        assert.match(errors[1]!.message, /HTTP status 302/)
        assert.match(errors[2]!.message, /action 2 in answer to action 0/)

        const tiers = new Tracker.Tiers([bad, [`${honest}/announce`]])
        const { infoHash, peerId } = request()
        const params = Effect.succeed({
          infoHash,
          peerId,
          port: 6881,
          uploaded: 0,
          downloaded: 0,
          left: 1,
          numWant: 50
        })
        const first = yield* Tracker.announces(tiers, params).pipe(Stream.runHead)
        assert.deepStrictEqual(first._tag === "Some" ? first.value.peers : [], [{ host: "127.0.0.1", port: 6881 }])
        record(errors.map((e) => e.message.replace(/^tracker \S+ /, "")).join("; ") + "; peers then came from tier 2")
      }).pipe(Effect.provide(live)),
    30_000
  )

  it.live("a peer list of 500,000 peers is capped at maxPeersPerAnnounce", () =>
    Effect.gen(function*() {
      const base = yield* httpServer((_, res) => res.end(Bencode.encode({ interval: 1800, peers: compact(500_000) })))
      const udp = yield* udpServer((packet, reply) => {
        const action = packet.readUInt32BE(8)
        const header = Buffer.alloc(action === 0 ? 16 : 20)
        header.writeUInt32BE(action, 0)
        header.writeUInt32BE(packet.readUInt32BE(12), 4)
        reply(action === 0 ? header : Buffer.concat([header, compact(10_000)])) // as many as a datagram holds
      })
      const http = yield* Tracker.Tracker.use((tracker) => tracker.announce(`${base}/announce`, request()))
      const overUdp = yield* Tracker.Tracker.use((tracker) => tracker.announce(udp, request()))
      assert.strictEqual(http.peers.length, Tracker.maxPeersPerAnnounce)
      assert.strictEqual(overUdp.peers.length, Tracker.maxPeersPerAnnounce)
      assert.deepStrictEqual(http.peers[0], { host: "10.0.0.0", port: 1 })
      record(`HTTP: 500000 peers sent, ${http.peers.length} taken; UDP: 10000 sent, ${overUdp.peers.length} taken`)
    }).pipe(Effect.provide(live)), 30_000)
})
