/**
 * WebSeed under TestClock: BEP 19 URLs, and a web seed served by an
 * in-memory HttpClient to a real Orchestrator (its Synchronizer, SHA-1,
 * bans): data verified and written, back-off after failures and the drop
 * after five, the floor rate against a drip, wrong ranges, and a ban for
 * corrupt data. The same over real HTTP is in test/interop/WebSeed.test.ts.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Queue } from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { TestClock } from "effect/testing"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import { Bans } from "../../src/torrent/Bans.ts"
import { backoffMillis } from "../../src/torrent/Monitor.ts"
import { Orchestrator } from "../../src/torrent/Orchestrator.ts"
import { RateLimits } from "../../src/torrent/RateLimit.ts"
import { Synchronizer } from "../../src/torrent/Synchronizer.ts"
import { TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import { type TorrentEvent, TorrentEvents } from "../../src/torrent/TorrentEvents.ts"
import * as WebSeed from "../../src/torrent/WebSeed.ts"
import * as FakePeer from "../util/FakePeer.ts"
import * as Fixtures from "./fixtures.ts"

const base = "http://seed.test/"
const requestTimeoutMillis = 1000

/** What the server is asked: a file's URL and the Range header. */
interface Asked {
  readonly url: string
  readonly range: { readonly start: number; readonly end: number }
}

/** 206 with the bytes of the range of `data` (the file's bytes). */
const partial = (data: Uint8Array, { end, start }: Asked["range"], total = data.length) =>
  new Response(data.slice(start, end + 1), {
    status: 206,
    headers: { "content-range": `bytes ${start}-${end}/${total}` }
  })

/**
 * A web seed at `base` for the fixture, answered by `answer`, beside a
 * running Orchestrator; the events published and every request made.
 */
const start = (fixture: Fixtures.Fixture, answer: (asked: Asked, n: number) => Response) =>
  Effect.gen(function*() {
    const published = yield* Queue.unbounded<TorrentEvent>()
    const asked: Array<Asked> = []
    const client = HttpClient.make((request, url) =>
      Effect.sync(() => {
        const [start, end] = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? "")!.slice(1).map(Number)
        const one = { url: url.href, range: { start: start!, end: end! } }
        asked.push(one)
        return HttpClientResponse.fromWeb(request, answer(one, asked.length))
      })
    )
    const disk = FakePeer.makeDisk(fixture.data, fixture.meta.pieceLength)
    const services = Layer.mergeAll(
      Synchronizer.layer(fixture.meta),
      disk.layer,
      NodeCrypto.layerDigest,
      TorrentConfig.layerWith({ peerId: new Uint8Array(20).fill(1), requestTimeoutMillis }),
      Layer.succeed(TorrentEvents, TorrentEvents.of({ publish: (e) => Queue.offer(published, e).pipe(Effect.asVoid) })),
      RateLimits.unlimited,
      Layer.succeed(HttpClient.HttpClient, client)
    )
    const context = yield* Layer.build(Orchestrator.layer(new Bans()).pipe(Layer.provideMerge(services)))
    const orchestrator = Context.get(context, Orchestrator)
    yield* Effect.forkScoped(Effect.provideContext(orchestrator.run, context))
    const seed = yield* Effect.forkScoped(Effect.provideContext(WebSeed.run(base), context))
    /** The next published event with this tag (waited for: the HTTP bodies are streams). */
    const next = <T extends TorrentEvent["_tag"]>(tag: T) =>
      Effect.gen(function*() {
        while (true) {
          const event = yield* Queue.take(published)
          if (event._tag === tag) return event as Extract<TorrentEvent, { readonly _tag: T }>
        }
      })
    return { asked, next, disk, seed, orchestrator }
  })

describe("WebSeed", () => {
  describe("fileUrls (BEP 19)", () => {
    const single = Fixtures.make([10]).meta
    const one: Metainfo.Metainfo = {
      ...single,
      multiFile: false,
      name: "a b.iso",
      files: [{ ...single.files[0]!, path: ["a b.iso"] }]
    }
    const multi = Fixtures.make([1, 2], { name: "my set", file: "ü?#%.bin" }).meta

    it("a single-file torrent's URL is the file; one ending in / is its folder", () => {
      assert.deepStrictEqual(WebSeed.fileUrls(one, "http://h/x/file.iso"), ["http://h/x/file.iso"])
      assert.deepStrictEqual(WebSeed.fileUrls(one, "http://h/x/"), ["http://h/x/a%20b.iso"])
    })

    it("a multi-file torrent's files are under its URL, each segment percent-encoded", () => {
      const expected = ["http://h/x/my%20set/%C3%BC%3F%23%25.bin", "http://h/x/my%20set/file-1.bin"]
      assert.deepStrictEqual(WebSeed.fileUrls(multi, "http://h/x/"), expected)
      assert.deepStrictEqual(WebSeed.fileUrls(multi, "http://h/x"), expected)
    })

    it("only http and https URLs are used", () => {
      assert.isTrue(WebSeed.isUsable("https://h/x"))
      assert.isFalse(WebSeed.isUsable("ftp://h/x"))
      assert.isFalse(WebSeed.isUsable("not a url"))
    })
  })

  it.effect("downloads every piece in ranges across the files, verified and written", () =>
    Effect.gen(function*() {
      const fixture = Fixtures.make([40_000, 0, 30_000, 50_001])
      const files = fixture.meta.files
      const seed = yield* start(fixture, (asked) => {
        const file = files.find((f) => asked.url.endsWith(`/${f.path.join("/")}`))!
        return partial(fixture.data.subarray(file.offset, file.offset + file.length), asked.range)
      })
      yield* Deferred.await(seed.orchestrator.completed)
      assert.strictEqual(seed.disk.written.size, fixture.meta.pieceCount)
      for (let i = 0; i < fixture.meta.pieceCount; i++) {
        assert.deepStrictEqual(seed.disk.written.get(i), fixture.piece(i))
      }
      // The empty file is never asked for; a piece across two files is two GETs.
      assert.isFalse(seed.asked.some((a) => a.url.endsWith("file-1.bin")))
      assert.isTrue(seed.asked.some((a) => a.url.endsWith("file-2.bin") && a.range.start === 0))
    }))

  it.effect("a server answering 500 is asked again after the back-off, and dropped after five failures in a row", () =>
    Effect.gen(function*() {
      const fixture = Fixtures.make([100_000])
      const seed = yield* start(fixture, () => new Response(null, { status: 500 }))
      for (let failure = 1; failure < WebSeed.maxFailures; failure++) {
        const ended = yield* seed.next("PeerDisconnected")
        assert.strictEqual(ended.peer, base)
        assert.include(ended.detail, "answered 500")
        const asked = seed.asked.length
        yield* TestClock.adjust(backoffMillis(failure) - 1)
        assert.strictEqual(seed.asked.length, asked, "asked again before the back-off")
        yield* TestClock.adjust(1)
        yield* seed.next("PeerConnected")
      }
      const dropped = yield* seed.next("Warning")
      assert.include(dropped.detail, `web seed ${base} dropped: answered 500`)
      yield* Fiber.join(seed.seed)
      const asked = seed.asked.length
      yield* TestClock.adjust(2 * backoffMillis(WebSeed.maxFailures))
      assert.strictEqual(seed.asked.length, asked)
    }))

  it.effect("a body slower than the floor rate fails at its deadline", () =>
    Effect.gen(function*() {
      const fixture = Fixtures.make([20_000]) // one piece: one GET
      const seed = yield* start(fixture, (asked) =>
        new Response(
          // One byte, then nothing.
          new ReadableStream({ start: (c) => c.enqueue(fixture.data.slice(asked.range.start, asked.range.start + 1)) }),
          { status: 206, headers: { "content-range": `bytes ${asked.range.start}-${asked.range.end}/20000` } }
        ))
      yield* seed.next("PeerConnected")
      while (seed.asked.length === 0) yield* Effect.yieldNow
      const bytes = seed.asked[0]!.range.end - seed.asked[0]!.range.start + 1
      const deadline = requestTimeoutMillis + (bytes / WebSeed.minRate) * 1000
      yield* TestClock.adjust(deadline - 1)
      const ended = yield* seed.next("PeerDisconnected").pipe(Effect.timeout(0), Effect.option)
      assert.strictEqual(ended._tag, "None", "failed before its deadline")
      yield* TestClock.adjust(1)
      assert.include((yield* seed.next("PeerDisconnected")).detail, "slower than 16384 bytes/s")
    }))

  it.effect("a range other than the one asked for, and a file of another size, are failures", () =>
    Effect.gen(function*() {
      const fixture = Fixtures.make([100_000])
      const seed = yield* start(fixture, (asked, n) =>
        n === 1
          ? partial(fixture.data, { start: asked.range.start + 1, end: asked.range.end + 1 })
          : partial(fixture.data, asked.range, 99_999))
      assert.include((yield* seed.next("PeerDisconnected")).detail, "answered \"bytes ")
      yield* TestClock.adjust(backoffMillis(1))
      assert.include((yield* seed.next("PeerDisconnected")).detail, "at 99999 bytes; the torrent says 100000")
    }))

  it.effect("a 200 for a part of the file drops the seed at once", () =>
    Effect.gen(function*() {
      // Larger than the seed asks for at once (its requests cover 512 KiB): every range is a part
      // of the file. A smaller one was sometimes asked for whole, to which a 200 is a right answer.
      const fixture = Fixtures.make([2_000_000])
      const seed = yield* start(fixture, () => new Response(fixture.data, { status: 200 }))
      assert.include((yield* seed.next("Warning")).detail, "dropped: answered a range with the whole file")
      yield* Fiber.join(seed.seed)
      assert.strictEqual(seed.asked.length >= 1, true)
      for (const { range } of seed.asked) assert.isBelow(range.end - range.start + 1, fixture.data.length)
    }))

  it.effect("wrong bytes fail the hash, named after the seed, which is banned and not asked again", () =>
    Effect.gen(function*() {
      const fixture = Fixtures.make([100_000])
      const seed = yield* start(fixture, (asked) => partial(new Uint8Array(fixture.data.length).fill(7), asked.range))
      const failed = yield* seed.next("HashFailed")
      assert.deepStrictEqual(failed.peers, [base])
      const ended = yield* seed.next("PeerDisconnected")
      assert.strictEqual(ended.reason, "Banned")
      yield* Fiber.join(seed.seed)
      const asked = seed.asked.length
      yield* TestClock.adjust(2 * backoffMillis(WebSeed.maxFailures))
      assert.strictEqual(seed.asked.length, asked)
    }))
})
