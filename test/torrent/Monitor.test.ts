import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type Address, Network } from "../../src/peer/Network.ts"
import { keyOf, type PeerKey } from "../../src/peer/PeerEvent.ts"
import * as PeerIo from "../../src/peer/PeerIo.ts"
import * as PeerSession from "../../src/peer/PeerSession.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Frame from "../../src/protocol/Frame.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as PeerHost from "../../src/torrent/PeerHost.ts"
import * as Monitor from "../../src/torrent/Monitor.ts"
import { PeerExchange } from "../../src/torrent/PeerExchange.ts"
import { RateLimits } from "../../src/torrent/RateLimit.ts"
import { Synchronizer } from "../../src/torrent/Synchronizer.ts"
import { TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import * as FakePeer from "../util/FakePeer.ts"
import * as MemorySocket from "../../src/peer/MemorySocket.ts"
import * as Fixtures from "./fixtures.ts"

const fixture = Fixtures.make([100_000, 0, 30_000])
const meta = fixture.meta
const infoHash = InfoHash.toBytes(meta.infoHash)
const ourId = new Uint8Array(20).fill(1)

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const address = (i: number): Address => ({ host: `10.0.0.${i}`, port: 6881 })

/** What the remote end of a dial does. */
type Behaviour =
  | "refuse" // the dial fails
  | "silent" // connects, never sends a handshake
  | "handshake" // answers with a good handshake, then stays quiet
  | "us" // answers with our own peer id

interface Dial {
  readonly peer: PeerKey
  readonly at: number
  /** The torrent the dial named (what an encrypted handshake is keyed with). */
  readonly infoHash: Uint8Array | undefined
}

/**
 * An in-memory Network that dials: every connect is recorded with its time; a
 * connection is live from its dial until our side closes it.
 */
const makeConnector = Effect.fnUntraced(function*(behaviour: (peer: PeerKey) => Behaviour) {
  const scope = yield* Effect.scope
  const dials: Array<Dial> = []
  const live = new Map<PeerKey, number>()
  let maxLivePerPeer = 0
  let liveTotal = 0
  let maxLiveTotal = 0
  const remotes = new Map<PeerKey, FakePeer.FakePeer>()
  const connector = MemorySocket.dialingNetwork((target, _timeoutMillis, options) =>
    Effect.gen(function*() {
      const peer = keyOf(target)
      dials.push({ peer, at: yield* Clock.currentTimeMillis, infoHash: options?.infoHash })
      const kind = behaviour(peer)
      if (kind === "refuse") return MemorySocket.refused()
      const pair = yield* MemorySocket.makePair
      const remote = yield* FakePeer.make(pair.remote, { pieceCount: meta.pieceCount }).pipe(
        Scope.provide(scope),
        Effect.orDie
      )
      remotes.set(peer, remote)
      if (kind !== "silent") {
        yield* remote.sendHandshake({ infoHash, peerId: kind === "us" ? ourId : new Uint8Array(20).fill(9) }).pipe(
          Effect.orDie
        )
      }
      const count = (delta: number) =>
        Effect.sync(() => {
          const n = (live.get(peer) ?? 0) + delta
          live.set(peer, n)
          liveTotal += delta
          maxLivePerPeer = Math.max(maxLivePerPeer, n)
          maxLiveTotal = Math.max(maxLiveTotal, liveTotal)
        })
      const socket = pair.local.socket
      return { ...socket, reader: Effect.acquireRelease(Effect.andThen(count(1), socket.reader), () => count(-1)) }
    })
  )
  return {
    dials,
    dialsTo: (peer: PeerKey) => dials.filter((d) => d.peer === peer).length,
    live: () => liveTotal,
    maxLivePerPeer: () => maxLivePerPeer,
    maxLiveTotal: () => maxLiveTotal,
    remotes,
    layer: Layer.succeed(Network, connector)
  }
})

/** A running Monitor over the fake connector; returns it with the connector's records. */
const start = Effect.fnUntraced(function*(
  behaviour: (peer: PeerKey) => Behaviour,
  settings: Partial<TorrentConfig["Service"]>,
  options?: { readonly isBanned?: (peer: PeerKey) => boolean }
) {
  const connector = yield* makeConnector(behaviour)
  const orchestrator = yield* FakePeer.makeOrchestrator(meta.pieceCount, options)
  const disk = FakePeer.makeDisk(fixture.data, meta.pieceLength)
  const layer = PeerHost.layer.pipe(Layer.provideMerge(Layer.mergeAll(
    connector.layer,
    orchestrator.layer,
    disk.layer,
    RateLimits.unlimited,
    PeerExchange.layer(true),
    Synchronizer.layer(meta),
    TorrentConfig.layerWith({ peerId: ourId, handshakeTimeoutMillis: 10_000, ...settings })
  )))
  const monitor = yield* Monitor.make.pipe(Effect.provide(layer))
  yield* Effect.forkChild(monitor.run)
  return { monitor, connector, events: orchestrator.events }
})

/**
 * A peer that dialled us from `from` (the listener has read its handshake):
 * its extended handshake says it listens on `listensOn`. The Monitor runs
 * its session until the returned peer closes.
 */
const incoming = Effect.fnUntraced(function*(
  monitor: Monitor.Monitor["Service"],
  from: Address,
  listensOn: number
) {
  const pair = yield* MemorySocket.makePair
  const remote = yield* FakePeer.make(pair.remote, { pieceCount: meta.pieceCount })
  yield* remote.sendHandshake({ infoHash, peerId: new Uint8Array(20).fill(7), features: ["extensions"] })
  yield* remote.send([{ _tag: "Extended", id: 0, payload: Bencode.encode({ m: { ut_pex: 9 }, p: listensOn }) }])
  const peer = keyOf(from)
  const io = yield* PeerIo.make(pair.local.socket, { maxFrame: Frame.maxFrameFor(meta.pieceCount) })
  const first = yield* PeerSession.readHandshake(
    io,
    10_000,
    (reason, detail) => new PeerSession.PeerError({ peer, reason, detail })
  )
  yield* Effect.forkChild(monitor.accept(peer, io, first))
  yield* settle
  return remote
})

describe("Monitor", () => {
  it("backoffMillis: 15 s, doubling, capped at 30 min", () => {
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 100].map(Monitor.backoffMillis),
      [15_000, 30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_800_000, 1_800_000, 1_800_000, 1_800_000]
    )
    assert.strictEqual(Monitor.backoffMillis(0), 15_000)
  })

  it.effect("retries a failing address only after its backoff, and gives up after 5 failures", () =>
    Effect.gen(function*() {
      const { monitor, connector } = yield* start(() => "refuse", {})
      const peer = keyOf(address(1))
      yield* monitor.add([address(1)])
      yield* settle
      assert.strictEqual(connector.dialsTo(peer), 1)

      // Failures at 0, 15, 45, 105 s: retries 15, 30, 60, 120 s later.
      for (const wait of [15_000, 30_000, 60_000, 120_000]) {
        const before = connector.dialsTo(peer)
        yield* TestClock.adjust(wait - 1)
        assert.strictEqual(connector.dialsTo(peer), before, `not yet, 1 ms before the ${wait / 1000} s backoff`)
        yield* TestClock.adjust(1)
        assert.strictEqual(connector.dialsTo(peer), before + 1, `at the ${wait / 1000} s backoff`)
      }
      assert.deepStrictEqual(connector.dials.map((d) => d.at), [0, 15_000, 45_000, 105_000, 225_000])
      // That was the 5th failure: the address is forgotten.
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(connector.dialsTo(peer), 5)
      // Adding it again starts afresh.
      yield* monitor.add([address(1)])
      yield* settle
      assert.strictEqual(connector.dialsTo(peer), 6)
    }))

  it.effect("never dials an address twice at once", () =>
    Effect.gen(function*() {
      const { monitor, connector } = yield* start(() => "silent", {})
      const peer = keyOf(address(1))
      yield* monitor.add([address(1)])
      yield* settle
      assert.strictEqual(connector.dialsTo(peer), 1)
      assert.strictEqual(yield* monitor.connections, 1)
      yield* monitor.add([address(1), address(1)])
      yield* TestClock.adjust(9_999)
      assert.strictEqual(connector.dialsTo(peer), 1, "still waiting for its handshake")
      assert.strictEqual(connector.live(), 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(connector.live(), 0, "the handshake timed out and the socket is closed")
      assert.strictEqual(yield* monitor.connections, 0)
      // First failure at 10 s: retried 15 s later.
      yield* TestClock.adjust(14_999)
      assert.strictEqual(connector.dialsTo(peer), 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(connector.dialsTo(peer), 2)
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(connector.maxLivePerPeer(), 1)
    }))

  it.effect("names the torrent in each dial (message stream encryption keys its handshake with it)", () =>
    Effect.gen(function*() {
      const { monitor, connector } = yield* start(() => "handshake", {})
      yield* monitor.add([address(1)])
      yield* settle
      assert.strictEqual(connector.dials.length, 1)
      assert.deepStrictEqual(connector.dials[0]!.infoHash, infoHash)
    }))

  it.effect("keeps at most maxHalfOpen connections in flight", () =>
    Effect.gen(function*() {
      const { monitor, connector } = yield* start(() => "silent", { maxHalfOpen: 3, maxPeers: 50 })
      yield* monitor.add(Array.from({ length: 10 }, (_, i) => address(i + 1)))
      yield* settle
      assert.strictEqual(connector.dials.length, 3)
      assert.strictEqual(connector.live(), 3)
      yield* TestClock.adjust(9_999)
      assert.strictEqual(connector.dials.length, 3)
      yield* TestClock.adjust(1) // the three time out: three more
      assert.strictEqual(connector.dials.length, 6)
      assert.strictEqual(connector.live(), 3)
      yield* TestClock.adjust(10_000)
      assert.strictEqual(connector.dials.length, 9)
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual(connector.maxLiveTotal(), 3)
      assert.isTrue(connector.dials.length > 10, "the first ones were retried")
    }))

  it.effect("keeps at most maxPeers sessions; a slot that frees up is filled", () =>
    Effect.gen(function*() {
      const { monitor, connector, events } = yield* start(() => "handshake", {
        maxPeers: 2,
        maxHalfOpen: 8,
        idleTimeoutMillis: 3_600_000,
        keepAliveMillis: 3_600_000
      })
      yield* monitor.add(Array.from({ length: 5 }, (_, i) => address(i + 1)))
      yield* settle
      assert.strictEqual(connector.dials.length, 2)
      assert.strictEqual(events.filter((e) => e._tag === "Connected").length, 2, "both handshaken")
      yield* TestClock.adjust(30_000)
      assert.strictEqual(connector.dials.length, 2, "no third one while two are open")
      assert.strictEqual(yield* monitor.connections, 2)

      const first = connector.dials[0]!.peer
      yield* connector.remotes.get(first)!.close
      yield* settle
      assert.strictEqual(connector.dials.length, 3)
      assert.strictEqual(yield* monitor.connections, 2)
      assert.notStrictEqual(connector.dials[2]!.peer, first, "a working peer that left waits before a redial")
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(connector.maxLiveTotal(), 2)
    }))

  it.effect("never dials again an address that turned out to be us, however often it is announced", () =>
    Effect.gen(function*() {
      const { monitor, connector } = yield* start(() => "us", {})
      yield* monitor.add([address(1)])
      yield* settle
      assert.strictEqual(connector.dials.length, 1)
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(connector.dials.length, 1)
      // Peers keep telling us of ourselves (PEX).
      for (let i = 0; i < 5; i++) {
        yield* monitor.add([address(1)])
        yield* TestClock.adjust("1 minute")
      }
      assert.strictEqual(connector.dials.length, 1)
    }))

  it.effect("does not dial where a peer that dialled us listens, while its session lasts", () =>
    Effect.gen(function*() {
      const { monitor, connector } = yield* start(() => "handshake", {
        idleTimeoutMillis: 3_600_000,
        keepAliveMillis: 3_600_000
      })
      const remote = yield* incoming(monitor, { host: "10.0.0.1", port: 50_000 }, address(1).port)
      assert.strictEqual(yield* monitor.connections, 1)
      // Another peer tells us (PEX) where it listens, again and again.
      yield* monitor.add([address(1), address(2)])
      yield* settle
      for (let i = 0; i < 5; i++) {
        yield* monitor.add([address(1)])
        yield* TestClock.adjust("1 minute")
      }
      assert.deepStrictEqual(
        connector.dials.map((d) => d.peer),
        [keyOf(address(2))],
        "only the peer we do not talk to yet"
      )
      // Once it has gone, its address may be dialled.
      yield* remote.close
      yield* settle
      yield* TestClock.adjust(1_000)
      assert.strictEqual(connector.dialsTo(keyOf(address(1))), 1)
    }))

  it.effect("never dials a banned address", () =>
    Effect.gen(function*() {
      const banned = keyOf(address(2))
      const { monitor, connector } = yield* start(() => "refuse", {}, { isBanned: (peer) => peer === banned })
      yield* monitor.add([address(1), address(2), address(3)])
      yield* settle
      assert.deepStrictEqual(connector.dials.map((d) => d.peer).sort(), [keyOf(address(1)), keyOf(address(3))])
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(connector.dialsTo(banned), 0)
    }))
})
