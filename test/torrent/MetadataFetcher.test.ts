/**
 * MetadataFetcher (as the host of a Monitor's sessions) over in-memory peers, on the TestClock: how ut_metadata
 * pieces are handed out, and when a peer's unanswered or rejected requests
 * are asked again and the peer dropped.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type Address, Network } from "../../src/peer/Network.ts"
import { keyOf, type PeerKey } from "../../src/peer/PeerEvent.ts"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as Extension from "../../src/protocol/Extension.ts"
import type * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Metadata from "../../src/protocol/Metadata.ts"
import { requestTimeoutMillis } from "../../src/torrent/MetadataAssembly.ts"
import { MetadataFetcher } from "../../src/torrent/MetadataFetcher.ts"
import { Monitor } from "../../src/torrent/Monitor.ts"
import { Bans } from "../../src/torrent/Bans.ts"
import { TorrentConfig } from "../../src/torrent/TorrentConfig.ts"
import { TorrentEvents } from "../../src/torrent/TorrentEvents.ts"
import * as FakePeer from "../util/FakePeer.ts"
import * as MemorySocket from "../../src/peer/MemorySocket.ts"

/** An info dictionary of 1,700 piece hashes: 34,000-odd bytes, three metadata pieces. */
const info = Bencode.encode({
  length: 1700 * 16384,
  name: "hog",
  "piece length": 16384,
  pieces: Buffer.alloc(1700 * 20, 7)
})
const infoHash = InfoHash.ofInfo(info)
/** The id the fake peers take ut_metadata messages on. */
const theirMetadataId = 3

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const address = (i: number): Address => ({ host: `10.0.0.${i}`, port: 6881 })

/**
 * A running fetcher whose every dial reaches a fake peer offering the
 * metadata (it answers only when told); its handshake offers `features`.
 */
const startWith = Effect.fnUntraced(function*(features: ReadonlyArray<Handshake.Feature>) {
  const scope = yield* Effect.scope
  const remotes = new Map<PeerKey, FakePeer.FakePeer>()
  const connector = MemorySocket.dialingNetwork((target) =>
    Effect.gen(function*() {
      const pair = yield* MemorySocket.makePair
      const remote = yield* FakePeer.make(pair.remote, { pieceCount: 1 }).pipe(Scope.provide(scope), Effect.orDie)
      remotes.set(keyOf(target), remote)
      yield* remote.sendHandshake({
        infoHash: InfoHash.toBytes(infoHash),
        peerId: new Uint8Array(20).fill(9),
        features
      })
        .pipe(Effect.orDie)
      const handshake = Bencode.encode({ m: { ut_metadata: theirMetadataId }, metadata_size: info.length })
      yield* remote.send([{ _tag: "Extended", id: 0, payload: handshake }]).pipe(Effect.orDie)
      return pair.local.socket
    })
  )
  const context = yield* Layer.build(
    Monitor.layer.pipe(
      Layer.provideMerge(MetadataFetcher.layer({ infoHash, bans: new Bans() })),
      Layer.provide(
        Layer.mergeAll(
          Layer.succeed(Network, connector),
          TorrentConfig.layerWith({ peerId: new Uint8Array(20).fill(1) }),
          TorrentEvents.layerDiscard
        )
      )
    )
  )
  const fetcher = Context.get(context, MetadataFetcher)
  const monitor = Context.get(context, Monitor)
  const run = yield* Effect.forkChild(Effect.raceFirst(fetcher.info, monitor.run))
  /** Dials the fake peer `i`; returns it once its handshakes are done. */
  const join = (i: number) =>
    Effect.gen(function*() {
      yield* monitor.add([address(i)])
      yield* settle
      return remotes.get(keyOf(address(i)))!
    })
  return { run, join }
})
const start = startWith(["extensions"])

/** The metadata pieces we asked `remote` for, in order. */
const asked = (remote: FakePeer.FakePeer): Array<number> =>
  remote.received.flatMap((m) => {
    if (m._tag !== "Extended" || m.id !== theirMetadataId) return []
    const parsed = Metadata.parse(m.payload)
    return parsed._tag === "Success" && parsed.success._tag === "Request" ? [parsed.success.piece] : []
  })

const reply = (remote: FakePeer.FakePeer, message: Metadata.MetadataMessage) =>
  remote.send([{ _tag: "Extended", id: Extension.ours.ut_metadata, payload: Metadata.encode(message) }]).pipe(
    Effect.andThen(settle)
  )

const answer = (remote: FakePeer.FakePeer, piece: number) => reply(remote, Metadata.answer(info, piece))

describe("MetadataFetcher", () => {
  it.effect("a request unanswered for 5 s is asked again at the deadline, not before; a peer that lets it happen twice is dropped", () =>
    Effect.gen(function*() {
      const { join } = yield* start
      const hog = yield* join(1)
      assert.deepStrictEqual(asked(hog), [0, 1])
      yield* TestClock.adjust(requestTimeoutMillis - 1)
      assert.deepStrictEqual(asked(hog), [0, 1], "not yet")
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(asked(hog), [0, 1, 0, 1], "asked again at the deadline")
      yield* TestClock.adjust(requestTimeoutMillis - 1)
      assert.isFalse(hog.closed())
      yield* TestClock.adjust(1)
      assert.isTrue(hog.closed(), "4 requests expired: dropped")
    }))

  it.effect("the pieces a silent peer holds are asked at once of the next peer, which completes the metadata", () =>
    Effect.gen(function*() {
      const { join, run } = yield* start
      const hog = yield* join(1)
      assert.deepStrictEqual(asked(hog), [0, 1])
      const honest = yield* join(2)
      assert.deepStrictEqual(asked(honest), [2, 0], "the piece nobody was asked, then one the hog holds")
      yield* answer(honest, 2)
      yield* answer(honest, 0)
      assert.deepStrictEqual(asked(honest), [2, 0, 1])
      yield* answer(honest, 1)
      const fetched = yield* Fiber.join(run)
      assert.strictEqual(Buffer.compare(fetched, info), 0)
      assert.deepStrictEqual(asked(hog), [0, 1], "done with no time passed, before the hog's requests expired")
    }))

  it.effect("a rejected piece is asked again at the peer's next tick; its third reject drops it", () =>
    Effect.gen(function*() {
      const { join } = yield* start
      const hog = yield* join(1)
      yield* reply(hog, { _tag: "Reject", piece: 0 })
      yield* reply(hog, { _tag: "Reject", piece: 1 })
      assert.deepStrictEqual(asked(hog), [0, 1], "not asked again at once")
      assert.isFalse(hog.closed())
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(asked(hog), [0, 1, 0, 1])
      yield* reply(hog, { _tag: "Reject", piece: 0 })
      assert.isTrue(hog.closed())
    }))

  it.effect("to a peer that offers the fast extension we send no have-none: our handshake did not offer it", () =>
    Effect.gen(function*() {
      const { join } = yield* startWith(["fast", "extensions"])
      const peer = yield* join(1)
      assert.deepStrictEqual(peer.received.map((m) => m._tag), ["Handshake", "Extended", "Extended", "Extended"])
      assert.deepStrictEqual(asked(peer), [0, 1])
      assert.isFalse(peer.closed())
    }))
})
