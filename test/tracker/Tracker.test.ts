import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Logger, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Tracker from "../../src/tracker/Tracker.ts"
import { request } from "./fixtures.ts"

interface Call {
  readonly at: number
  readonly url: string
  readonly request: Tracker.AnnounceRequest
}

/**
 * Both transports in memory: `answer` decides each announce. Calls are
 * recorded with the (test) time they were made.
 */
const fakeTrackers = (
  answer: (url: string, call: number) => Effect.Effect<Partial<Tracker.AnnounceResponse>, Tracker.TrackerErrorReason>
) => {
  const calls: Array<Call> = []
  const transport = Tracker.HttpTransport.of({
    announce: (url, request) =>
      Effect.gen(function*() {
        calls.push({ at: yield* Clock.currentTimeMillis, url: url.href, request })
        const response = yield* answer(url.href, calls.length)
        return { interval: 1800, peers: [], ...response }
      }).pipe((effect) => Tracker.withUrl(effect, url)),
    scrape: (url) => Tracker.withUrl(Effect.fail(new Tracker.UnsupportedUrl({ problem: "not scraped here" })), url)
  })
  const layer = Tracker.Tracker.layer.pipe(
    Layer.provide([Layer.succeed(Tracker.HttpTransport, transport), Layer.succeed(Tracker.UdpTransport, transport)])
  )
  return { calls, layer }
}

const down = Effect.fail(new Tracker.Network({ cause: new Error("connection refused") }))

const params = Effect.succeed(request())

describe("Tracker", () => {
  it.effect("dispatches on the scheme; others are UnsupportedUrl", () =>
    Effect.gen(function*() {
      const { calls, layer } = fakeTrackers(() => Effect.succeed({}))
      const { announce } = yield* Effect.provide(Tracker.Tracker, layer)
      yield* announce("http://a.test/announce", request())
      yield* announce("udp://b.test:80", request())
      assert.deepStrictEqual(calls.map((call) => call.url), ["http://a.test/announce", "udp://b.test:80"])
      for (const url of ["wss://c.test/announce", "no url at all"]) {
        const error = yield* Effect.flip(announce(url, request()))
        assert.strictEqual(error.reason._tag, "UnsupportedUrl")
        assert.strictEqual(error.url, url)
      }
    }))

  it.effect("announces started, then none after each interval", () =>
    Effect.gen(function*() {
      const { calls, layer } = fakeTrackers(() => Effect.succeed({ interval: 1800, minInterval: 600 }))
      const tiers = yield* Tracker.makeTiers([["http://a.test/announce"]])
      const responses: Array<Tracker.AnnounceResponse> = []
      yield* Tracker.announces(tiers, params).pipe(
        Stream.runForEach((response) => Effect.sync(() => responses.push(response))),
        Effect.provide(layer),
        Effect.forkChild
      )
      yield* TestClock.adjust(0)
      assert.deepStrictEqual(calls.map((call) => [call.at, call.request.event]), [[0, "started"]])
      assert.strictEqual(responses.length, 1)
      yield* TestClock.adjust("1799 seconds")
      assert.strictEqual(calls.length, 1)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1800 seconds")
      assert.deepStrictEqual(calls.map((call) => [call.at / 1000, call.request.event]), [
        [0, "started"],
        [1800, "none"],
        [3600, "none"]
      ])
      assert.strictEqual(responses.length, 3)
    }))

  it.effect("waits the min interval when it is longer, and at least 30 s", () =>
    Effect.gen(function*() {
      const { calls, layer } = fakeTrackers((_, call) =>
        Effect.succeed(call === 1 ? { interval: 60, minInterval: 300 } : { interval: 0 })
      )
      const tiers = yield* Tracker.makeTiers([["http://a.test/announce"]])
      yield* Stream.runDrain(Tracker.announces(tiers, params)).pipe(Effect.provide(layer), Effect.forkChild)
      yield* TestClock.adjust("300 seconds")
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(calls.map((call) => call.at / 1000), [0, 300, 330])
    }))

  it.effect("retries with backoff while every tracker fails", () =>
    Effect.gen(function*() {
      const { calls, layer } = fakeTrackers((_, call) => call <= 3 ? down : Effect.succeed({}))
      const tiers = yield* Tracker.makeTiers([["http://a.test/announce"]])
      const fiber = yield* Tracker.peers(tiers, params).pipe(
        Stream.runDrain,
        Effect.provide(layer),
        Effect.forkChild
      )
      yield* TestClock.adjust("14 seconds")
      assert.strictEqual(calls.length, 1)
      yield* TestClock.adjust("1 second") // 15 s
      yield* TestClock.adjust("30 seconds") // 45 s
      assert.deepStrictEqual(calls.map((call) => [call.at / 1000, call.request.event]), [
        [0, "started"],
        [15, "started"],
        [45, "started"]
      ])
      yield* TestClock.adjust("60 seconds") // 105 s: answered
      yield* TestClock.adjust("1800 seconds")
      assert.deepStrictEqual(calls.slice(3).map((call) => [call.at / 1000, call.request.event]), [
        [105, "started"],
        [1905, "none"]
      ])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a tracker failing every announce is one warning, again only when the reason changes; its status follows", () =>
    Effect.gen(function*() {
      const timeout = Effect.fail(new Tracker.Timeout({ seconds: 15 }))
      const { calls, layer } = fakeTrackers((_, call) => call <= 4 ? down : call === 5 ? timeout : Effect.succeed({}))
      const logs: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => logs.push(`${logLevel}: ${[message].flat().join(" ")}`))
      const tiers = yield* Tracker.makeTiers([["http://a.test/announce"]])
      assert.strictEqual(tiers.status, "working", "before the first announce")
      yield* Tracker.peers(tiers, params).pipe(
        Stream.runDrain,
        Effect.provide([layer, Logger.layer([capture])]),
        Effect.forkChild
      )
      yield* TestClock.adjust("0 seconds")
      assert.strictEqual(tiers.status, "failing")
      yield* TestClock.adjust("105 seconds") // retries at 15, 45 and 105 s: the same reason
      assert.strictEqual(calls.length, 4)
      assert.deepStrictEqual(logs, [
        "Warn: no tracker answers; the last: tracker http://a.test/announce could not be reached: connection refused"
      ])
      yield* TestClock.adjust("120 seconds") // 225 s: another reason
      yield* TestClock.adjust("240 seconds") // 465 s: answered
      assert.strictEqual(calls.length, 6)
      assert.deepStrictEqual(logs.slice(1), [
        "Warn: no tracker answers; the last: tracker http://a.test/announce did not answer within 15 seconds",
        "Info: a tracker answers again"
      ])
      assert.strictEqual(tiers.status, "working")
      assert.strictEqual((yield* Tracker.makeTiers([[]])).status, "none")
    }))

  it.effect("tries a tier in order, moves the tracker that answered to the front, falls back to the next tier", () =>
    Effect.gen(function*() {
      const { calls, layer } = fakeTrackers((url) =>
        url.startsWith("http://b") || url.startsWith("http://d") ? Effect.succeed({ trackerId: `id-${url[7]}` }) : down
      )
      const tiers = yield* Tracker.makeTiers([["http://a.test/", "http://b.test/"], ["http://c.test/"]])
      const announceOnce = Tracker.announces(tiers, params).pipe(Stream.runHead, Effect.provide(layer))

      yield* announceOnce
      assert.deepStrictEqual(tiers.tiers, [["http://b.test/", "http://a.test/"], ["http://c.test/"]])
      calls.length = 0
      yield* announceOnce
      assert.deepStrictEqual(calls.map((call) => [call.url, call.request.trackerId]), [["http://b.test/", "id-b"]])

      const fallback = yield* Tracker.makeTiers([["http://a.test/"], ["http://c.test/", "http://d.test/"]])
      calls.length = 0
      yield* Tracker.announces(fallback, params).pipe(Stream.runHead, Effect.provide(layer))
      assert.deepStrictEqual(calls.map((call) => call.url).slice(0, 1), ["http://a.test/"])
      assert.strictEqual(calls.at(-1)?.url, "http://d.test/")
      assert.deepStrictEqual(fallback.tiers, [["http://a.test/"], ["http://d.test/", "http://c.test/"]])
    }))

  it.effect("stopped and completed go to the tracker that answers, and give up after 30 s", () =>
    Effect.gen(function*() {
      const answering = fakeTrackers(() => Effect.succeed({}))
      const tiers = yield* Tracker.makeTiers([["http://a.test/"]])
      yield* Tracker.announceCompleted(tiers, params).pipe(Effect.provide(answering.layer))
      yield* Tracker.announceStopped(tiers, params).pipe(Effect.provide(answering.layer))
      assert.deepStrictEqual(answering.calls.map((call) => call.request.event), ["completed", "stopped"])

      const silent = fakeTrackers(() => Effect.never)
      const fiber = yield* Tracker.announceStopped(tiers, params).pipe(Effect.provide(silent.layer), Effect.forkChild)
      yield* TestClock.adjust("29 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
    }))

  it.effect("a torrent without trackers announces nothing", () =>
    Effect.gen(function*() {
      const { calls, layer } = fakeTrackers(() => Effect.succeed({}))
      const tiers = yield* Tracker.makeTiers([[]])
      const responses = yield* Stream.runCollect(Tracker.announces(tiers, params)).pipe(Effect.provide(layer))
      yield* Tracker.announceStopped(tiers, params).pipe(Effect.provide(layer))
      assert.deepStrictEqual([responses.length, calls.length], [0, 0])
    }))
})
