/**
 * Scrape (BEP 48 over HTTP, BEP 15 over UDP) against real trackers,
 * bittorrent-tracker@10 and opentracker, after real announces; the scrape
 * URL rules; typed errors; and `effect-torrent info --scrape`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as HttpTracker from "../../src/tracker/HttpTracker.ts"
import * as Tracker from "../../src/tracker/Tracker.ts"
import * as UdpTracker from "../../src/tracker/UdpTracker.ts"
import * as Fixtures from "../torrent/fixtures.ts"
import { tempDir } from "../util/Files.ts"
import { freePort, opentracker, trackerUrls } from "../util/Swarm.ts"
import { httpServer, infoHash, peerId, request, trackerServer } from "./fixtures.ts"

const live = Tracker.Tracker.layer.pipe(Layer.provide([HttpTracker.layerNode, UdpTracker.layerNode]))

/** Two seeders (one of which completed its download there) and three leechers announce `hash` to `url`. */
const swarmAt = (url: string, hash: Uint8Array) =>
  Effect.gen(function*() {
    const tracker = yield* Tracker.Tracker
    const peer = (n: number, left: number, event: Tracker.Event = "started") =>
      tracker.announce(url, request({ infoHash: hash, peerId: peerId(n), port: 7000 + n, left, event }))
    yield* peer(1, 1000)
    yield* peer(1, 0, "completed")
    yield* peer(2, 0)
    for (const n of [3, 4, 5]) yield* peer(n, 1000)
  })

/**
 * Waits (at most 5 s) until opentracker takes announces for `hash` at `url`:
 * it loads its whitelist in a thread of its own after it listens, and until
 * then answers a UDP announce with a bare 8-byte header. A "stopped" one it
 * answers in full either way (it checks the whitelist only when it adds a
 * peer), so the probe peer starts, and once it is in, stops: it counts nowhere.
 */
const whitelisted = (url: string, hash: Uint8Array) =>
  Effect.gen(function*() {
    const tracker = yield* Tracker.Tracker
    const probe = (event: Tracker.Event) =>
      tracker.announce(url, request({ infoHash: hash, peerId: peerId(9), port: 7009, left: 1000, event }))
    for (let attempt = 1;; attempt++) {
      const answer = yield* Effect.result(probe("started"))
      if (Result.isSuccess(answer)) return yield* probe("stopped")
      if (attempt === 50) return yield* answer.failure
      yield* Effect.sleep(100)
    }
  })

/** What `swarmAt` leaves... */
const counts = { seeders: 2, leechers: 3, downloaded: 1 }
/** ...as bittorrent-tracker tells it: its downloads are its seeders ("a lower bound", it says). */
const lowerBound = { ...counts, downloaded: 2 }

describe("scrape", () => {
  it("the scrape URL replaces announce at the start of the last segment (BEP 48)", () => {
    const scrape = (url: string) => HttpTracker.scrapeUrl(new URL(url))
    assert.strictEqual(scrape("http://example.com/announce"), "http://example.com/scrape")
    assert.strictEqual(scrape("http://example.com/x/announce"), "http://example.com/x/scrape")
    assert.strictEqual(scrape("http://example.com/announce.php"), "http://example.com/scrape.php")
    assert.strictEqual(scrape("http://example.com/announce?x2%0644"), "http://example.com/scrape?x2%0644")
    assert.strictEqual(scrape("http://example.com/x%064/announce"), "http://example.com/x%064/scrape")
    assert.strictEqual(scrape("http://example.com/a"), undefined)
    assert.strictEqual(scrape("http://example.com/announce/x"), undefined)
    assert.strictEqual(scrape("http://example.com/x/Announce"), undefined)
  })

  it("an HTTP answer's entry is found under the raw info-hash; none, or a refusal, is a failure", () => {
    const answer = (files: Bencode.BDict) => new Uint8Array(Buffer.from(Bencode.encode({ files })))
    const body = Buffer.concat([
      Buffer.from("d5:filesd20:"),
      Buffer.from(infoHash),
      Buffer.from("d8:completei3e10:downloadedi9e10:incompletei4eeee")
    ])
    assert.deepStrictEqual(
      Result.getOrThrow(HttpTracker.parseScrape(200, body, infoHash)),
      { seeders: 3, leechers: 4, downloaded: 9 }
    )
    const none = HttpTracker.parseScrape(200, answer({}), infoHash)
    assert.isTrue(Result.isFailure(none) && none.failure._tag === "BadResponse")
    const refused = HttpTracker.parseScrape(
      200,
      new Uint8Array(Buffer.from("d14:failure reason6:no waye")),
      infoHash
    )
    assert.isTrue(Result.isFailure(refused) && refused.failure._tag === "Failure")
  })

  it("a UDP answer too short is a BadResponse", () => {
    assert.isTrue(Result.isFailure(UdpTracker.parseScrape(new Uint8Array(12))))
  })

  it.live(
    "from bittorrent-tracker over HTTP and UDP: two seeders, three leechers",
    () =>
      Effect.gen(function*() {
        const { http, udp } = yield* trackerServer
        yield* swarmAt(http, infoHash)
        const tracker = yield* Tracker.Tracker
        assert.deepStrictEqual(yield* tracker.scrape(http, infoHash), lowerBound)
        assert.deepStrictEqual(yield* tracker.scrape(udp, infoHash), lowerBound)
      }).pipe(Effect.provide(live)),
    30_000
  )

  it.live(
    "from opentracker over HTTP and UDP: two seeders, three leechers, one download",
    () =>
      Effect.gen(function*() {
        const meta = Fixtures.make([100_000]).meta
        const hash = InfoHash.toBytes(meta.infoHash)
        const port = yield* freePort
        yield* opentracker({ port, dir: yield* tempDir("opentracker-scrape"), torrents: [meta] })
        const urls = trackerUrls(port)
        yield* whitelisted(urls.udp, hash)
        yield* swarmAt(urls.udp, hash)
        const tracker = yield* Tracker.Tracker
        const http = yield* tracker.scrape(urls.http, hash)
        assert.deepStrictEqual(http, counts)
        assert.deepStrictEqual(yield* tracker.scrape(urls.udp, hash), http)
      }).pipe(Effect.provide(live)),
    30_000
  )

  it.live(
    "an announce URL without a scrape URL, a refusal and an unreachable tracker are typed errors",
    () =>
      Effect.gen(function*() {
        const tracker = yield* Tracker.Tracker
        const noScrape = yield* Effect.flip(tracker.scrape("http://127.0.0.1:1/tracker", infoHash))
        assert.strictEqual(noScrape.reason._tag, "UnsupportedUrl")
        const refusing = yield* httpServer((_, response) => response.end("d14:failure reason8:go away!e"))
        const refused = yield* Effect.flip(tracker.scrape(`${refusing}/announce`, infoHash))
        assert.strictEqual(refused.reason._tag, "Failure")
        assert.include(refused.message, "go away!")
        const port = yield* freePort
        const down = yield* Effect.flip(tracker.scrape(`http://127.0.0.1:${port}/announce`, infoHash))
        assert.strictEqual(down.reason._tag, "Network")
      }).pipe(Effect.provide(live)),
    30_000
  )

  it.live("effect-torrent info --scrape prints each tracker's counts, or its error", () =>
    Effect.gen(function*() {
      const { http } = yield* trackerServer
      const dead = `http://127.0.0.1:${yield* freePort}/announce`
      const meta = Fixtures.make([100_000]).meta
      yield* swarmAt(http, InfoHash.toBytes(meta.infoHash)).pipe(Effect.provide(live))
      const dir = yield* tempDir("info-scrape")
      const file = join(dir, "t.torrent")
      Fs.writeFileSync(file, Metainfo.encode({ ...meta, announce: [[http], [dead]] }))
      const root = fileURLToPath(new URL("../..", import.meta.url))
      const run = (...args: ReadonlyArray<string>) =>
        Effect.callback<string>((resume) => {
          execFile(join(root, "node_modules/.bin/tsx"), ["src/cli/main.ts", "info", file, "--scrape", ...args], {
            cwd: root,
            encoding: "utf8",
            timeout: 60_000
          }, (_error, stdout) => resume(Effect.succeed(stdout)))
        })
      const text = yield* run()
      assert.include(text, `  ${http}  seeders 2  leechers 3  downloaded 2`)
      assert.include(text, `  ${dead}  failed: tracker ${dead} could not be reached`)
      const json = JSON.parse(yield* run("--json"))
      assert.deepStrictEqual(json.scrape, [
        { url: http, ...lowerBound },
        { url: dead, error: { reason: "Network", message: json.scrape[1].error.message } }
      ])
    }), 60_000)
})
