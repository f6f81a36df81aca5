/**
 * Peer exchange (BEP 11) in a session, on the TestClock over an in-memory
 * socket: what we send (at most 50 peers a message, never two messages within
 * the interval, the rest and the dropped ones in the next), what we take from
 * a peer's messages (at most 50), and nothing at all for a private torrent;
 * a peer connected to us twice is not told of itself; the seed flag, both
 * ways.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Queue, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as PeerSession from "../../src/peer/PeerSession.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Bitfield from "../../src/protocol/Bitfield.ts"
import * as Extension from "../../src/protocol/Extension.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Pex from "../../src/protocol/Pex.ts"
import type * as WireMessage from "../../src/protocol/WireMessage.ts"
import * as PeerExchange from "../../src/torrent/PeerExchange.ts"
import { RateLimits } from "../../src/torrent/RateLimit.ts"
import * as PexRound from "../../src/peer/PexRound.ts"
import * as PeerHost from "../../src/torrent/PeerHost.ts"
import { Synchronizer } from "../../src/torrent/Synchronizer.ts"
import { TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import * as Fixtures from "../torrent/fixtures.ts"
import * as FakePeer from "../util/FakePeer.ts"
import * as MemorySocket from "../../src/peer/MemorySocket.ts"

const peer = "192.168.0.1:6881"
const fixture = Fixtures.make([4 * Fixtures.pieceLength])
const infoHash = InfoHash.toBytes(fixture.meta.infoHash)
const pieceCount = fixture.meta.pieceCount
const pieceLength = Fixtures.pieceLength
const data = fixture.data
/** The id the remote wants ut_pex on. */
const theirPex = 9

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const address = (i: number) => ({ host: `10.0.${i >> 8}.${i & 0xff}`, port: 6881 })

/** A session (we dialled) whose remote speaks ut_pex; `others` peers are in the swarm first. */
const start = Effect.fnUntraced(function*(options: { readonly enabled: boolean; readonly others: number }) {
  const exchange = yield* PeerExchange.PeerExchange.pipe(
    Effect.provide(PeerExchange.PeerExchange.layer(options.enabled))
  )
  for (let i = 1; i <= options.others; i++) {
    yield* exchange.connected(`other-${i}`, { address: address(i), flags: Pex.flags.reachable })
  }
  const pair = yield* MemorySocket.makePair
  const orchestrator = yield* FakePeer.makeOrchestrator(pieceCount)
  const remote = yield* FakePeer.make(pair.remote, { pieceCount })
  const fiber = yield* PeerSession.run({
    peer,
    connection: { _tag: "Outgoing", socket: Effect.succeed(pair.local.socket) }
  }).pipe(
    Effect.provide(PeerHost.layer.pipe(Layer.provideMerge(Layer.mergeAll(
      orchestrator.layer,
      Synchronizer.layer(fixture.meta),
      FakePeer.makeDisk(data, pieceLength).layer,
      RateLimits.unlimited,
      Layer.succeed(PeerExchange.PeerExchange, exchange),
      TorrentConfig.layerWith({
        peerId: new Uint8Array(20).fill(1),
        idleTimeoutMillis: 3_600_000,
        keepAliveMillis: 600_000
      })
    )))),
    Effect.forkChild
  )
  yield* settle
  yield* remote.sendHandshake({ infoHash, peerId: new Uint8Array(20).fill(2), features: ["extensions"] })
  yield* remote.send([{ _tag: "Extended", id: 0, payload: Bencode.encode({ m: { ut_pex: theirPex } }) }])
  yield* settle
  /** The ut_pex messages we sent, read. */
  const sent = () =>
    remote.received
      .filter((m): m is Extract<WireMessage.WireMessage, { _tag: "Extended" }> =>
        m._tag === "Extended" && m.id === theirPex
      )
      .map((m) => Result.getOrThrow(Pex.parse(m.payload)))
  return { exchange, remote, fiber, sent, orchestrator }
})

describe("peer exchange", () => {
  it.effect("at most 50 peers a message and one message per interval; the rest and the dropped ones come next", () =>
    Effect.gen(function*() {
      const { exchange, fiber, sent } = yield* start({ enabled: true, others: 60 })
      // The first message goes as soon as the peer says it speaks ut_pex.
      assert.strictEqual(sent().length, 1)
      const first = sent()[0]!
      assert.strictEqual(first.added.length, Pex.maxPeers)
      assert.deepStrictEqual(first.added[0], { ...address(1), flags: Pex.flags.reachable })
      assert.deepStrictEqual(first.dropped, [])
      assert.isFalse(first.added.some((p) => `${p.host}:${p.port}` === peer), "not told of itself")

      for (const i of [1, 2, 3]) yield* exchange.disconnected(`other-${i}`)
      yield* TestClock.adjust(PexRound.intervalMillis - 1)
      assert.strictEqual(sent().length, 1, "not a second message within the interval")
      yield* TestClock.adjust(1)
      assert.strictEqual(sent().length, 2, "the next one at the interval")
      const second = sent()[1]!
      assert.deepStrictEqual(
        second.added.map((p) => p.host),
        Array.from({ length: 10 }, (_, k) => address(51 + k).host)
      )
      assert.deepStrictEqual(second.dropped, [address(1), address(2), address(3)])

      // Nothing new: nothing sent, however long.
      yield* TestClock.adjust(3 * PexRound.intervalMillis)
      assert.strictEqual(sent().length, 2)
      // News goes out at the next look once the interval has passed.
      yield* exchange.connected("other-99", { address: address(99), flags: 0 })
      yield* TestClock.adjust(PexRound.pollMillis)
      assert.strictEqual(sent().length, 3)
      assert.deepStrictEqual(sent()[2], { added: [{ ...address(99), flags: 0 }], dropped: [] })
      assert.isUndefined(fiber.pollUnsafe(), "the session is still up")
    }))

  it("a peer connected to us twice (it dialled us, we dialled it) is not told of itself on either session", () => {
    const listening = { host: "10.0.0.1", port: 6881 }
    const swarm = new Map<string, PexRound.Entry>([
      ["10.0.0.1:50000", { address: listening, flags: 0 }], // it dialled us; its extended handshake gave its port
      ["10.0.0.1:6881", { address: listening, flags: Pex.flags.reachable }], // we dialled it
      ["10.0.0.2:6881", { address: address(2), flags: Pex.flags.reachable }]
    ])
    for (const session of ["10.0.0.1:50000", "10.0.0.1:6881"]) {
      assert.deepStrictEqual(new PexRound.Round().next(swarm, session)?.added, [{
        ...address(2),
        flags: Pex.flags.reachable
      }], session)
    }
  })

  it.effect("a peer's message gives the Monitor at most 50 of the peers it lists", () =>
    Effect.gen(function*() {
      const { exchange, remote } = yield* start({ enabled: true, others: 0 })
      const found: Array<{ readonly host: string; readonly port: number }> = []
      yield* Stream.runForEach(exchange.discovered, (a) => Effect.sync(() => found.push(a))).pipe(Effect.forkChild)
      const added = Array.from({ length: 60 }, (_, i) => ({ ...address(i + 1), flags: 0 }))
      yield* remote.send([{ _tag: "Extended", id: Extension.ours.ut_pex, payload: Pex.encode({ added, dropped: [] }) }])
      yield* settle
      assert.deepStrictEqual(found, added.slice(0, Pex.maxPeers).map(({ host, port }) => ({ host, port })))
    }))

  it.effect("a private torrent neither offers nor reads ut_pex, and sends none", () =>
    Effect.gen(function*() {
      const { exchange, fiber, remote, sent } = yield* start({ enabled: false, others: 5 })
      const ours = remote.received.find((m) => m._tag === "Extended" && m.id === 0)
      assert.isDefined(ours)
      const handshake = Result.getOrThrow(Extension.decodeHandshake((ours as { payload: Uint8Array }).payload))
      assert.isUndefined(handshake.ids.ut_pex)
      assert.strictEqual(handshake.ids.ut_metadata, Extension.ours.ut_metadata)

      const found: Array<unknown> = []
      yield* Stream.runForEach(exchange.discovered, (a) => Effect.sync(() => found.push(a))).pipe(Effect.forkChild)
      yield* remote.send([{
        _tag: "Extended",
        id: Extension.ours.ut_pex,
        payload: Pex.encode({ added: [{ ...address(7), flags: 0 }], dropped: [] })
      }])
      yield* TestClock.adjust(2 * PexRound.intervalMillis)
      assert.deepStrictEqual(found, [])
      assert.deepStrictEqual(sent(), [])
      assert.isUndefined(fiber.pollUnsafe(), "the message was ignored, not an error")
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a peer with every piece is told of as a seed (0x02); once we upload only (BEP 21), we say so and take no seeds from PEX", () =>
    Effect.gen(function*() {
      const { exchange, fiber, orchestrator, remote } = yield* start({ enabled: true, others: 0 })
      assert.strictEqual((yield* exchange.swarm).get(peer)?.flags, Pex.flags.reachable)
      yield* remote.send([{ _tag: "Bitfield", bytes: Bitfield.full(pieceCount).toBytes() }])
      yield* settle
      assert.strictEqual((yield* exchange.swarm).get(peer)?.flags, Pex.flags.reachable | Pex.flags.seed)

      const connected = orchestrator.events.find((e) => e._tag === "Connected")!
      yield* Queue.offer(connected._tag === "Connected" ? connected.outbox : undefined!, {
        _tag: "UploadOnly",
        on: true
      })
      yield* settle
      const handshakes = remote.received.filter((m) => m._tag === "Extended" && m.id === 0)
      const last = Result.getOrThrow(Extension.decodeHandshake((handshakes.at(-1) as { payload: Uint8Array }).payload))
      assert.strictEqual(last.uploadOnly, true)

      const found: Array<unknown> = []
      yield* Stream.runForEach(exchange.discovered, (a) => Effect.sync(() => found.push(a))).pipe(Effect.forkChild)
      yield* remote.send([{
        _tag: "Extended",
        id: Extension.ours.ut_pex,
        payload: Pex.encode({
          added: [{ ...address(7), flags: Pex.flags.seed }, { ...address(8), flags: 0 }],
          dropped: []
        })
      }])
      yield* settle
      assert.deepStrictEqual(found, [address(8)])
      yield* Fiber.interrupt(fiber)
    }))
})
