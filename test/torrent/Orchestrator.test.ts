import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { PeerCommand, PeerEvent, PeerKey } from "../../src/peer/PeerEvent.ts"
import * as Handshake from "../../src/protocol/Handshake.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import type { WireMessage } from "../../src/protocol/WireMessage.ts"
import { type BlockRequest, blockSize } from "../../src/protocol/Block.ts"
import type { Settings } from "../../src/torrent/TorrentConfig.ts"
import * as Fixtures from "./fixtures.ts"

/** 3 pieces: two of 32 KiB (2 blocks each), then 2000 bytes (1 block): 5 blocks. */
const fixture = Fixtures.make([30_000, 37_536])
const meta = fixture.meta
const infoHash = InfoHash.toBytes(meta.infoHash)

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const allBlocks: ReadonlyArray<BlockRequest> = [
  { index: 0, begin: 0, length: blockSize },
  { index: 0, begin: blockSize, length: blockSize },
  { index: 1, begin: 0, length: blockSize },
  { index: 1, begin: blockSize, length: blockSize },
  { index: 2, begin: 0, length: 2000 }
]
const keyOf = (r: BlockRequest) => `${r.index}:${r.begin}:${r.length}`
const sortedKeys = (rs: ReadonlyArray<BlockRequest>) => rs.map(keyOf).sort()

const blockOf = (r: BlockRequest, corrupt = false, of: Fixtures.Fixture = fixture): WireMessage => {
  const block = of.block(r.index, r.begin, r.length).slice()
  if (corrupt) block[0] ^= 0xff
  return { _tag: "Piece", index: r.index, begin: r.begin, block }
}

/** An Orchestrator over a fresh Synchronizer, an in-memory disk and node:crypto SHA-1, running. */
const startWith = Effect.fnUntraced(function*(fixture: Fixtures.Fixture, settings?: Partial<Settings>) {
  const { disk, orchestrator, sync } = yield* Fixtures.orchestrator(fixture, settings)
  yield* Effect.forkChild(orchestrator.run)

  /** A fake session: its Connected event carries an outbox the test reads. */
  const connect = Effect.fnUntraced(function*(peer: PeerKey, id = peer, outgoing = true) {
    const outbox = yield* Queue.unbounded<PeerCommand>()
    const peerId = new Uint8Array(20)
    peerId.set(new TextEncoder().encode(id).subarray(0, 20))
    yield* orchestrator.offer({
      _tag: "Connected",
      peer,
      handshake: Handshake.make({ infoHash, peerId }),
      outbox,
      outgoing
    })
    yield* settle
    return {
      peer,
      /** Everything sent to the session since the last call. */
      drain: Queue.clear(outbox),
      /** One socket read's worth of messages from the peer. */
      says: (
        messages: ReadonlyArray<WireMessage>,
        options?: { readonly depth?: number; readonly released?: ReadonlyArray<BlockRequest> }
      ) =>
        Effect.andThen(
          orchestrator.offer({
            _tag: "Messages",
            peer,
            messages,
            released: options?.released ?? [],
            depth: options?.depth ?? 10
          }),
          settle
        ),
      offer: (event: PeerEvent) => Effect.andThen(orchestrator.offer(event), settle)
    }
  })
  return { orchestrator, sync, disk, connect }
})
const start = startWith(fixture)

const tagsOf = (commands: ReadonlyArray<PeerCommand>) => commands.map((c) => c._tag)
const requestsIn = (commands: ReadonlyArray<PeerCommand>): Array<BlockRequest> =>
  commands.flatMap((c) => c._tag === "Request" ? [{ index: c.index, begin: c.begin, length: c.length }] : [])

describe("Orchestrator", () => {
  it.effect("a reader's window is asked for first, and no longer once it is done reading", () =>
    Effect.gen(function*() {
      const ten = Fixtures.make([10 * 32 * 1024])
      const { connect, orchestrator } = yield* startWith(ten)
      yield* orchestrator.reading(1, 6, 9)
      yield* orchestrator.doneReading(1)
      yield* orchestrator.reading(2, 3, 3)
      const a = yield* connect("10.0.0.1:6881")
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }], { depth: 2 })
      assert.deepStrictEqual(requestsIn(yield* a.drain).map((r) => r.index), [3, 3], "reader 2's piece, not reader 1's")
    }))

  it.effect("progress is published as peers come and go and pieces are verified, between the seconds; uploads a session reports as it ends count", () =>
    Effect.gen(function*() {
      const { connect, orchestrator } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      assert.strictEqual((yield* orchestrator.progress.get).peers, 1, "at once, not at the next second")
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      const asked = requestsIn(yield* a.drain).filter((r) => r.index === 0)
      yield* a.says(asked.map((r) => blockOf(r)))
      // Hashing and writing happen off the event loop: wait for the verdict.
      yield* orchestrator.progress.changes.pipe(Stream.takeUntil((p) => p.verified > 0), Stream.runDrain)
      assert.deepStrictEqual((yield* orchestrator.progress.get).files, [30_000, 32 * 1024 - 30_000])
      yield* a.offer({
        _tag: "Disconnected",
        peer: a.peer,
        reason: "Closed",
        detail: "closed",
        released: [],
        uploaded: 5000
      })
      const after = yield* orchestrator.progress.get
      assert.strictEqual(after.peers, 0)
      assert.strictEqual(after.uploaded, 5000)
    }))

  it.effect("interest follows what the peer has; requests only once unchoked, up to its depth", () =>
    Effect.gen(function*() {
      const { connect } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      const empty = yield* connect("10.0.0.2:6881")
      assert.deepStrictEqual(yield* a.drain, [])

      yield* empty.says([{ _tag: "HaveNone" }, { _tag: "Unchoke" }])
      assert.deepStrictEqual(yield* empty.drain, [], "nothing to want from a peer with nothing")

      yield* a.says([{ _tag: "Have", index: 2 }], { depth: 3 })
      assert.deepStrictEqual(yield* a.drain, [{ _tag: "Interested" }])
      yield* a.says([{ _tag: "HaveAll" }], { depth: 3 })
      assert.deepStrictEqual(yield* a.drain, [], "already interested")

      yield* a.says([{ _tag: "Unchoke" }], { depth: 3 })
      const first = requestsIn(yield* a.drain)
      assert.strictEqual(first.length, 3, "the session's depth")
      assert.strictEqual(new Set(first.map(keyOf)).size, 3)

      // One answered: one more request keeps the pipeline at 3.
      yield* a.says([blockOf(first[0]!)], { depth: 3 })
      const second = requestsIn(yield* a.drain)
      assert.strictEqual(second.length, 1)
      assert.isFalse(first.map(keyOf).includes(keyOf(second[0]!)))

      // Choked: no more requests, even when the depth grows.
      yield* a.says([{ _tag: "Choke" }], { depth: 5, released: [first[1]!, first[2]!, second[0]!] })
      assert.deepStrictEqual(yield* a.drain, [])
      // Unchoked again: the released blocks are asked for again (4 missing).
      yield* a.says([{ _tag: "Unchoke" }], { depth: 5 })
      const third = requestsIn(yield* a.drain)
      assert.deepStrictEqual(sortedKeys(third), sortedKeys(allBlocks.filter((r) => keyOf(r) !== keyOf(first[0]!))))
    }))

  it.effect("a peer held back by the budget of unverified pieces gets requests again once they are verified", () =>
    Effect.gen(function*() {
      // 8 one-block pieces; at most 4 (the floor) complete but unverified pieces at a time.
      const small = Fixtures.make([8 * blockSize], { pieceLength: blockSize })
      const { connect, sync } = yield* startWith(small, { maxPendingBytes: 1 })
      const a = yield* connect("10.0.0.1:6881")
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }], { depth: 4 })
      const first = requestsIn(yield* a.drain)
      assert.strictEqual(first.length, 4)
      // All four arrive in one read: four pieces wait for their hash, so no requests in that batch;
      // once they are verified, A must be asked again without any further event of its own.
      const blocks = first.map((r): WireMessage => ({
        _tag: "Piece",
        ...r,
        block: small.block(r.index, r.begin, r.length)
      }))
      yield* a.says(blocks, { depth: 4 })
      assert.strictEqual(sync.haveCount, 4)
      const next = requestsIn(yield* a.drain)
      assert.strictEqual(next.length, 4, "the other four pieces requested")
      assert.deepStrictEqual(new Set([...first, ...next].map((r) => r.index)).size, 8)
    }))

  it.effect("upload only (BEP 21): told to peers once complete; a peer saying so too is dropped then, not before", () =>
    Effect.gen(function*() {
      const { connect } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      const partial = yield* connect("10.0.0.2:6881")
      yield* partial.says([{ _tag: "HaveNone" }])
      yield* partial.offer({ _tag: "PeerUploadOnly", peer: "10.0.0.2:6881", on: true })
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      assert.notInclude(tagsOf(yield* partial.drain), "Disconnect", "dropped while we still download")
      yield* a.says(requestsIn(yield* a.drain).map((r) => blockOf(r)))
      const toPartial = yield* partial.drain
      assert.includeDeepMembers(toPartial, [{ _tag: "UploadOnly", on: true }])
      assert.strictEqual(toPartial.find((c) => c._tag === "Disconnect")?._tag, "Disconnect")
      assert.notInclude(tagsOf(yield* a.drain), "Disconnect")
      // A peer connecting now hears it at once.
      const late = yield* connect("10.0.0.3:6881")
      assert.deepStrictEqual(yield* late.drain, [{ _tag: "UploadOnly", on: true }])
    }))

  it.effect("verified pieces go to disk, are announced, and end our interest; completion is signalled without waiting on a sync of the files", () =>
    Effect.gen(function*() {
      const { connect, disk, orchestrator, sync } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      const b = yield* connect("10.0.0.2:6881")
      yield* b.says([{ _tag: "HaveNone" }])
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      const requests = requestsIn(yield* a.drain)
      assert.deepStrictEqual(sortedKeys(requests), sortedKeys(allBlocks))
      assert.isFalse(yield* Deferred.isDone(orchestrator.completed))

      yield* a.says(requests.map((r) => blockOf(r)))
      for (let i = 0; i < meta.pieceCount; i++) {
        assert.deepStrictEqual(disk.written.get(i), fixture.piece(i), `piece ${i} on disk`)
        assert.isTrue(sync.has(i))
      }
      const toA = yield* a.drain
      assert.deepStrictEqual(toA.filter((c) => c._tag === "Have"), [], "A has every piece: no word of ours")
      assert.strictEqual(toA.filter((c) => c._tag === "NotInterested").length, 1)
      assert.deepStrictEqual(tagsOf(yield* b.drain), ["Have", "Have", "Have", "UploadOnly"])
      assert.isTrue(yield* Deferred.isDone(orchestrator.completed))
      // The Torrent syncs them once told (a GiB takes a third of a second).
      assert.strictEqual(disk.flushes(), 0, "no sync before completion")
      const progress = yield* orchestrator.progress.get
      assert.strictEqual(progress.state, "complete")
      assert.strictEqual(progress.done, meta.length)
      assert.deepStrictEqual(progress.files, [30_000, 37_536])
    }))

  it.effect("endgame: a block from A cancels the same request at B", () =>
    Effect.gen(function*() {
      const { connect } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      const b = yield* connect("10.0.0.2:6881")
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      const toA = requestsIn(yield* a.drain)
      assert.deepStrictEqual(sortedKeys(toA), sortedKeys(allBlocks))
      yield* b.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      const toB = requestsIn(yield* b.drain)
      assert.deepStrictEqual(sortedKeys(toB), sortedKeys(allBlocks), "every block duplicated at B")

      const block = allBlocks[1]!
      yield* a.says([blockOf(block)])
      assert.deepStrictEqual(yield* b.drain, [{ _tag: "Cancel", ...block }])
      assert.deepStrictEqual(requestsIn(yield* a.drain), [], "A is not asked for anything it already has")

      // B's answer the other way round.
      const other = allBlocks[4]!
      yield* b.says([blockOf(other)])
      const toA2 = yield* a.drain
      assert.deepStrictEqual(toA2.filter((c) => c._tag === "Cancel"), [{ _tag: "Cancel", ...other }])
      assert.deepStrictEqual(toA2.filter((c) => c._tag !== "Cancel"), [], "piece 2 is done, and A has it")
      // B's late copy of the cancelled block is ignored, nothing is cancelled at A.
      yield* b.says([blockOf(block)])
      assert.deepStrictEqual(yield* a.drain, [])
    }))

  it.effect("a piece failing its hash: its sole contributor is disconnected and banned; the piece is fetched again", () =>
    Effect.gen(function*() {
      const { connect, orchestrator, disk, sync } = yield* start
      const bad = yield* connect("10.0.0.1:6881")
      const good = yield* connect("10.0.0.2:6881")
      yield* bad.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      yield* bad.drain
      yield* bad.says([blockOf(allBlocks[0]!, true), blockOf(allBlocks[1]!)])
      const toBad = yield* bad.drain
      assert.deepStrictEqual(toBad.find((c) => c._tag === "Disconnect"), {
        _tag: "Disconnect",
        reason: "Banned",
        detail: "sent corrupt data"
      })
      assert.isTrue(orchestrator.isBanned("10.0.0.1:6881", 0))
      assert.isFalse(orchestrator.isBanned("10.0.0.1:51413", 0), "another client at the same IP is not banned")
      assert.isFalse(orchestrator.isBanned("10.0.0.2:6881", 0))
      assert.isFalse(disk.written.has(0))
      assert.isFalse(sync.has(0))

      yield* bad.offer({
        _tag: "Disconnected",
        peer: bad.peer,
        reason: "Dropped",
        detail: "sent corrupt data",
        released: [],
        uploaded: 0
      })
      yield* good.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      const toGood = requestsIn(yield* good.drain)
      assert.deepStrictEqual(
        sortedKeys(toGood),
        sortedKeys(allBlocks),
        "piece 0 again, and the blocks the bad peer held"
      )
      yield* good.says(toGood.map((r) => blockOf(r)))
      assert.deepStrictEqual(disk.written.get(0), fixture.piece(0))
      assert.isTrue(yield* Deferred.isDone(orchestrator.completed))

      yield* TestClock.adjust(1000) // progress is published every second
      const progress = yield* orchestrator.progress.get
      assert.strictEqual(progress.hashFailures, 1)
    }))

  it.effect("a piece failing its hash after we lost interest: we become interested again and fetch it", () =>
    Effect.gen(function*() {
      const { connect, orchestrator, disk } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      const b = yield* connect("10.0.0.2:6881")
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      const requests = requestsIn(yield* a.drain)
      yield* b.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }])
      yield* b.drain
      // Every block at once, piece 2's corrupt: pieces 0 and 1 verify while 2 is pending.
      const order = [...requests].sort((x, y) => x.index - y.index)
      yield* a.says(order.map((r) => blockOf(r, r.index === 2)))
      assert.isTrue(orchestrator.isBanned(a.peer, 0))
      assert.isTrue(disk.written.has(0) && disk.written.has(1) && !disk.written.has(2))
      const toB = yield* b.drain
      // B has piece 2, which we need again: we must (still or again) be interested and ask for it.
      const interested = toB.reduce(
        (state, c) => c._tag === "Interested" ? true : c._tag === "NotInterested" ? false : state,
        true
      )
      assert.isTrue(interested, `B was told ${JSON.stringify(tagsOf(toB))}`)
      assert.deepStrictEqual(requestsIn(toB).map(keyOf), [keyOf(allBlocks[4]!)], "piece 2 asked of B")
    }))

  /** A and B have only piece 0 and a pipeline of one block each: each round, each sends one of its two blocks. */
  const sharedPiece = Effect.gen(function*() {
    const started = yield* start
    const a = yield* started.connect("10.0.0.1:6881")
    const b = yield* started.connect("10.0.0.2:6881")
    yield* a.says([{ _tag: "Have", index: 0 }, { _tag: "Unchoke" }], { depth: 1 })
    yield* b.says([{ _tag: "Have", index: 0 }, { _tag: "Unchoke" }], { depth: 1 })
    /** One round: both answer their request, A's block corrupt when `corruptA`. */
    const round = Effect.fnUntraced(function*(corruptA: boolean) {
      const fromA = requestsIn(yield* a.drain)
      const fromB = requestsIn(yield* b.drain)
      assert.deepStrictEqual(sortedKeys([...fromA, ...fromB]), sortedKeys(allBlocks.slice(0, 2)))
      yield* a.says([blockOf(fromA[0]!, corruptA)], { depth: 1 })
      yield* b.says([blockOf(fromB[0]!)], { depth: 1 })
    })
    return { ...started, a, b, round }
  })

  it.effect("smart ban: a bad piece from two peers; when a good copy comes, only the one whose block differed is banned", () =>
    Effect.gen(function*() {
      const { a, b, disk, orchestrator, round } = yield* sharedPiece
      yield* round(true)
      assert.isFalse(disk.written.has(0), "the first copy failed")
      assert.isFalse(orchestrator.isBanned(a.peer, 0), "not yet known who sent the bad block")
      assert.isFalse(orchestrator.isBanned(b.peer, 0))
      yield* round(false)
      assert.deepStrictEqual(disk.written.get(0), fixture.piece(0), "the second copy passed")
      assert.isTrue(orchestrator.isBanned(a.peer, 0), "A's block of the failed copy differs from the good one")
      assert.isTrue(tagsOf(yield* a.drain).includes("Disconnect"))
      assert.isFalse(orchestrator.isBanned(b.peer, 0), "B sent only good blocks")
      assert.isFalse(tagsOf(yield* b.drain).includes("Disconnect"))
    }))

  it.effect("a bad piece from two peers again and again with no good copy: a strike each, both banned at their third", () =>
    Effect.gen(function*() {
      const { a, b, orchestrator, round } = yield* sharedPiece
      for (let n = 1; n <= 3; n++) {
        yield* round(true)
        const banned = n === 3
        assert.strictEqual(orchestrator.isBanned(a.peer, 0), banned, `A after round ${n}`)
        assert.strictEqual(orchestrator.isBanned(b.peer, 0), banned, `B after round ${n}`)
      }
      assert.isTrue(tagsOf(yield* a.drain).includes("Disconnect"))
      assert.isTrue(tagsOf(yield* b.drain).includes("Disconnect"))
    }))

  it.effect("pieces failing after one of their senders was banned for corrupt data cost the others no strike", () =>
    Effect.gen(function*() {
      const eight = Fixtures.make([8 * Fixtures.pieceLength]) // eight pieces of two blocks
      const { connect, disk, orchestrator } = yield* startWith(eight)
      const a = yield* connect("10.0.0.1:6881")
      yield* a.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }], { depth: 100 })
      const toA = requestsIn(yield* a.drain)
      assert.strictEqual(toA.length, 16, "every block asked of A")
      const second = (r: BlockRequest) => r.begin > 0
      // A corrupts all of piece 0 (it alone sent it: banned) and the second block of pieces 1-3.
      yield* a.says(toA.filter((r) => r.index === 0 || (r.index <= 3 && second(r))).map((r) => blockOf(r, true, eight)))
      assert.isTrue(orchestrator.isBanned(a.peer, 0))
      // B sends the first blocks of pieces 1-3: each piece fails, with A's bad block in it.
      const b = yield* connect("10.0.0.2:6881")
      yield* b.says([{ _tag: "HaveAll" }, { _tag: "Unchoke" }], { depth: 100 })
      const firsts = requestsIn(yield* b.drain).filter((r) => r.index >= 1 && r.index <= 3 && !second(r))
      assert.strictEqual(firsts.length, 3, "endgame: B is asked for the blocks A has not sent")
      yield* b.says(firsts.map((r) => blockOf(r, false, eight)))
      assert.deepStrictEqual([0, 1, 2, 3].filter((i) => disk.written.has(i)), [], "all four failed")
      assert.isFalse(orchestrator.isBanned(b.peer, 0), "three failures A explains: no strike for B")
      assert.isFalse(tagsOf(yield* b.drain).includes("Disconnect"))
    }))

  it.effect("a second connection from the same peer id is refused", () =>
    Effect.gen(function*() {
      const { connect } = yield* start
      yield* connect("10.0.0.1:6881", "same-client")
      const twin = yield* connect("10.0.0.9:6881", "same-client")
      assert.deepStrictEqual(yield* twin.drain, [{
        _tag: "Disconnect",
        reason: "Dropped",
        detail: "already connected to this peer"
      }])
    }))

  it.effect("a peer that dialled us as we dialled it: the connection dialled by the lower peer id is kept, whatever came first", () =>
    Effect.gen(function*() {
      // Our peer id is 20 bytes of 0x01, below any printable one: the connection we dialled stays.
      const disconnect: Array<PeerCommand> = [{
        _tag: "Disconnect",
        reason: "Dropped",
        detail: "already connected to this peer"
      }]
      const first = yield* start
      const incoming = yield* first.connect("10.0.0.1:51000", "client-a", false)
      const outgoing = yield* first.connect("10.0.0.1:6881", "client-a", true)
      assert.deepStrictEqual(yield* incoming.drain, disconnect)
      assert.deepStrictEqual(yield* outgoing.drain, [])

      const second = yield* start
      const dialled = yield* second.connect("10.0.0.2:6881", "client-b", true)
      const dialledUs = yield* second.connect("10.0.0.2:51000", "client-b", false)
      assert.deepStrictEqual(yield* dialledUs.drain, disconnect)
      assert.deepStrictEqual(yield* dialled.drain, [])
    }))

  it.effect("a snubbing peer is dropped when there are others", () =>
    Effect.gen(function*() {
      const { connect } = yield* start
      const a = yield* connect("10.0.0.1:6881")
      const tick = {
        _tag: "Tick",
        peer: a.peer,
        released: [],
        depth: 10,
        rate: 0,
        uploaded: 0,
        snubbing: true
      } as const
      yield* a.offer(tick)
      assert.deepStrictEqual(yield* a.drain, [], "not our only peer")
      yield* connect("10.0.0.2:6881")
      yield* a.offer(tick)
      assert.deepStrictEqual(yield* a.drain, [{ _tag: "Disconnect", reason: "Unhelpful", detail: "snubbed us" }])
    }))
})

// Keep the fixture honest: the pieces above are what the tests assume.
it("fixture: 3 pieces, 5 blocks", () => {
  assert.strictEqual(meta.pieceCount, 3)
  assert.strictEqual(Metainfo.pieceSize(meta, 2), 2000)
})
