import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { HttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as HttpTracker from "../../src/tracker/HttpTracker.ts"
import * as Tracker from "../../src/tracker/Tracker.ts"
import * as UdpTracker from "../../src/tracker/UdpTracker.ts"
import { httpServer, infoHash, peerId, request, trackerServer, trackerServerOn } from "./fixtures.ts"

const live = Tracker.Tracker.layer.pipe(Layer.provide([HttpTracker.layerNode, UdpTracker.layerNode]))

const announce = (url: string, overrides: Partial<Tracker.AnnounceRequest> = {}) =>
  Tracker.Tracker.use((tracker) => tracker.announce(url, request(overrides))).pipe(Effect.provide(live))

/** Announces to a server that answers every request with `body` (and `status`). */
const announceTo = (body: Uint8Array | string, status = 200) =>
  Effect.gen(function*() {
    const base = yield* httpServer((_, res) => {
      res.statusCode = status
      res.end(body)
    })
    return yield* Effect.flip(announce(`${base}/announce`))
  })

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

describe("HttpTracker", () => {
  it("escapes every byte of info_hash that is not unreserved", () => {
    const url = HttpTracker.announceUrl(new URL("http://t.example/announce?passkey=abc"), request({ event: "none" }))
    assert.strictEqual(
      url,
      "http://t.example/announce?passkey=abc&info_hash=%00%20%25%2B~%FFA-._%3D%26%3F%80%7F%0A0z%2F%23" +
        "&peer_id=-ET0100-000000000001&port=6881&uploaded=0&downloaded=0&left=1000&compact=1&numwant=50"
    )
  })

  it.live("a second peer gets the first one back; stopped removes it (bittorrent-tracker)", () =>
    Effect.gen(function*() {
      const { http, server } = yield* trackerServer
      yield* announce(http, { peerId: peerId(1), port: 7001 })
      const second = yield* announce(http, { peerId: peerId(2), port: 7002 })
      assert.deepInclude(second.peers, { host: "127.0.0.1", port: 7001 })
      assert.strictEqual(second.incomplete, 2)
      assert.isAbove(second.interval, 0)
      assert.deepStrictEqual(Object.keys(server.torrents), [hex(infoHash)])

      yield* announce(http, { peerId: peerId(1), port: 7001, event: "stopped" })
      const after = yield* announce(http, { peerId: peerId(2), port: 7002, event: "none" })
      assert.notDeepInclude(after.peers, { host: "127.0.0.1", port: 7001 })
      assert.strictEqual(after.incomplete, 1)
    }))

  it.live("over IPv6 ([::1]): peers that announced from ::1 come back in peers6 (bittorrent-tracker)", () =>
    Effect.gen(function*() {
      const { http } = yield* trackerServerOn("ipv6")
      assert.match(http, /^http:\/\/\[::1\]:\d+\/announce$/)
      yield* announce(http, { peerId: peerId(1), port: 7001 })
      const second = yield* announce(http, { peerId: peerId(2), port: 7002 })
      // (bittorrent-tracker lists the announcer too in peers6)
      assert.deepInclude(second.peers, { host: "::1", port: 7001 })
      assert.isTrue(second.peers.every((peer) => peer.host === "::1"))
      assert.strictEqual(second.incomplete, 2)
    }))

  it.live("reads dictionary peers, peers6, min interval, tracker id and warning", () =>
    Effect.gen(function*() {
      const base = yield* httpServer((_, res) => {
        res.end(Bencode.encode({
          interval: 1800,
          "min interval": 60,
          "tracker id": "t-42",
          "warning message": "be nice",
          complete: 3,
          incomplete: 4,
          peers: [
            { "peer id": "x".repeat(20), ip: "10.0.0.1", port: 51413 },
            { ip: "peer.example", port: 1 }, // a DNS name: skipped
            { ip: "2001:db8::1", port: 6881 }
          ],
          peers6: Buffer.from("fe8000000000000000000000000000011ae1", "hex")
        }))
      })
      const response = yield* announce(`${base}/announce`)
      assert.deepStrictEqual(response, {
        interval: 1800,
        minInterval: 60,
        trackerId: "t-42",
        warning: "be nice",
        complete: 3,
        incomplete: 4,
        peers: [
          { host: "10.0.0.1", port: 51413 },
          { host: "2001:db8::1", port: 6881 },
          { host: "fe80::1", port: 6881 }
        ]
      })
    }))

  it.live("a failure reason is a Failure, with 200 or an error status", () =>
    Effect.gen(function*() {
      for (const status of [200, 403]) {
        const error = yield* announceTo(Bencode.encode({ "failure reason": "unregistered torrent" }), status)
        assert.strictEqual(error.reason._tag, "Failure")
        assert.match(
          error.message,
          /^tracker http:\/\/127\.0\.0\.1:\d+\/announce refused the announce: unregistered torrent$/
        )
      }
      const base = yield* httpServer((_, res) => res.end(Bencode.encode({ "failure reason": "gone" })))
      const text = yield* announce(`${base}/announce`).pipe(
        Effect.catchReason("TrackerError", "Failure", (failure) => Effect.succeed(failure.text))
      )
      assert.strictEqual(text, "gone")
    }))

  it.live("garbage is a BadResponse saying what was wrong", () =>
    Effect.gen(function*() {
      const cases: Array<[Uint8Array | string, number, RegExp]> = [
        ["<html>oops</html>", 200, /invalid bencode at byte 0/],
        ["not found", 404, /HTTP status 404/],
        [Bencode.encode({ peers: "" }), 200, /interval/],
        [Bencode.encode({ interval: 60, peers: "1234567" }), 200, /7 bytes is not a multiple of 6/],
        [Bencode.encode({ interval: -5 }), 200, /interval/],
        [Buffer.alloc(5 * 1024 * 1024, 0x61), 200, /larger than 4194304 bytes/]
      ]
      for (const [body, status, problem] of cases) {
        const error = yield* announceTo(body, status)
        assert.strictEqual(error.reason._tag, "BadResponse", error.message)
        assert.match(error.message, problem)
      }
    }))

  it.live("follows a few redirects, not endless ones", () =>
    Effect.gen(function*() {
      const base = yield* httpServer((req, res) => {
        if (req.url?.startsWith("/moved")) {
          res.writeHead(302, { location: "/announce?passkey=1" }).end()
        } else if (req.url?.startsWith("/loop")) {
          res.writeHead(302, { location: "/loop" }).end()
        } else {
          res.end(Bencode.encode({ interval: 900, peers: Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]) }))
        }
      })
      const moved = yield* announce(`${base}/moved`)
      assert.deepStrictEqual(moved.peers, [{ host: "127.0.0.1", port: 6881 }])
      const loop = yield* Effect.flip(announce(`${base}/loop`))
      assert.match(loop.message, /HTTP status 302/)
    }))

  it.live("an unreachable tracker is a Network error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(announce("http://127.0.0.1:1/announce")) // nothing listens on port 1
      assert.strictEqual(error.reason._tag, "Network")
    }))

  it.effect("gives up after 15 seconds", () =>
    Effect.gen(function*() {
      const silent = HttpClient.make(() => Effect.never)
      const layer = Tracker.Tracker.layer.pipe(
        Layer.provide([
          HttpTracker.layer.pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, silent))),
          UdpTracker.layerNode
        ])
      )
      const fiber = yield* Tracker.Tracker.use((tracker) => tracker.announce("http://127.0.0.1:1/announce", request()))
        .pipe(Effect.provide(layer), Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("14999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "Timeout")
      assert.match(error.message, /did not answer within 15 seconds/)
    }))
})
