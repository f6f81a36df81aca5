import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { vi } from "vitest"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as Synchronizer from "../../src/torrent/Synchronizer.ts"
import { blockKey, type BlockRequest, blockSize } from "../../src/protocol/Block.ts"
import { contributorsOf } from "../../src/torrent/Synchronizer.ts"
import * as Fixtures from "./fixtures.ts"

/** The source of the Synchronizer's tie-breaks, set per test. */
const random = vi.fn<() => number>(() => 0.5)

const all: Synchronizer.PieceSet = { has: () => true }
const only = (...indices: Array<number>): Synchronizer.PieceSet => ({ has: (i) => indices.includes(i) })
const without = (...indices: Array<number>): Synchronizer.PieceSet => ({ has: (i) => !indices.includes(i) })
const none = new Set<number>()

const req = (index: number, block: number, length = blockSize): BlockRequest => ({
  index,
  begin: block * blockSize,
  length
})
const keysOf = (requests: ReadonlyArray<BlockRequest>) => new Set(requests.map((r) => blockKey(r.index, r.begin)))
const piecesOf = (requests: ReadonlyArray<BlockRequest>) => [...new Set(requests.map((r) => r.index))]

/**
 * 11 pieces of 32 KiB, the last one 2320 bytes (one short block), over three
 * files, one of them empty.
 */
const eleven = Fixtures.make([150_000, 0, 180_000])
/** 3 pieces: two of 32 KiB, then 2000 bytes. */
const three = Fixtures.make([30_000, 37_536])
/**
 * 7 pieces, the last one 3392 bytes:
 *   file 0: 40000 bytes, pieces 0–1
 *   file 1: empty, at offset 40000 (inside piece 1)
 *   file 2: 50000 bytes, pieces 1–2
 *   file 3: 100000 bytes, pieces 2–5
 *   file 4: 10000 bytes, pieces 5–6
 */
const files = Fixtures.make([40_000, 0, 50_000, 100_000, 10_000])

/** Receives every block of an open piece from `from`; returns the completed piece. */
const complete = (sync: Synchronizer.State, fixture: Fixtures.Fixture, index: number, from = "peer") => {
  let done: Synchronizer.OpenPiece | undefined
  for (let b = 0; b < sync.blocksIn(index); b++) {
    const r = req(index, b, Math.min(blockSize, Metainfo.pieceSize(fixture.meta, index) - b * blockSize))
    const result = sync.receive(index, r.begin, fixture.block(index, r.begin, r.length), from)
    assert.isTrue(result.fresh, `block ${b} of piece ${index}`)
    if (result.complete !== undefined) done = result.complete
  }
  assert.isDefined(done)
  return done!
}

/** Picks a whole piece for a peer that has only it, downloads and verifies it. */
const fetch = (sync: Synchronizer.State, fixture: Fixtures.Fixture, index: number) => {
  const picked = sync.pick(only(index), 100, none, 100)
  assert.deepStrictEqual(piecesOf(picked), [index])
  sync.verified(complete(sync, fixture, index))
}

describe("Synchronizer", () => {
  describe("the fixtures", () => {
    it("have short last pieces and an empty file", () => {
      assert.strictEqual(eleven.meta.pieceCount, 11)
      assert.strictEqual(Metainfo.pieceSize(eleven.meta, 10), 2320)
      assert.strictEqual(eleven.meta.files[1]!.length, 0)
      assert.strictEqual(three.meta.pieceCount, 3)
      assert.strictEqual(Metainfo.pieceSize(three.meta, 2), 2000)
      assert.strictEqual(files.meta.pieceCount, 7)
      assert.strictEqual(Metainfo.pieceSize(files.meta, 6), 3392)
    })
  })

  describe("pick order", () => {
    beforeEach(() => {
      // Ties go to the first candidate from a random piece on: 0 starts at
      // piece 0, so the lowest index wins.
      random.mockReturnValue(0)
    })
    afterEach(() => random.mockReset())

    /** Availability i + 1 for piece i: piece 0 is the rarest, piece 10 the commonest. */
    const rising = (sync: Synchronizer.State) => {
      for (let k = 0; k < sync.meta.pieceCount; k++) sync.addAvailability({ has: (i) => i >= k }, 1)
      assert.deepStrictEqual(
        Array.from({ length: sync.meta.pieceCount }, (_, i) => sync.availabilityOf(i)),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
      )
    }

    it("the first 4 pieces are random, whatever their availability; then rarest first", () => {
      const sync = Synchronizer.make(eleven.meta, { random })
      rising(sync)
      // Random phase: every needed piece ties; the draws start at 10, 9, 8 and 7.
      for (const start of [10, 9, 8, 7]) random.mockReturnValueOnce((start + 0.5) / 11)
      const first: Array<number> = []
      for (let k = 0; k < 4; k++) {
        const picked = sync.pick(all, 1, none, 100)
        assert.strictEqual(picked.length, 1)
        first.push(picked[0]!.index)
        sync.verified(complete(sync, eleven, picked[0]!.index))
      }
      assert.deepStrictEqual(first, [10, 9, 8, 7], "the commonest pieces: availability was ignored")
      assert.strictEqual(sync.haveCount, 4)
      assert.isTrue(random.mock.calls.length > 0)

      // Rarest first: 0, then 1 (0 is open), …
      assert.deepStrictEqual(sync.pick(all, 2, none, 100), [req(0, 0), req(0, 1)])
      assert.deepStrictEqual(sync.pick(all, 2, none, 100), [req(1, 0), req(1, 1)])
      // … following availability as it changes: piece 5 becomes the rarest.
      for (let k = 0; k < 6; k++) sync.addAvailability(only(5), -1)
      assert.strictEqual(sync.availabilityOf(5), 0)
      assert.deepStrictEqual(sync.pick(all, 2, none, 100), [req(5, 0), req(5, 1)])
      // The rarest piece this peer has.
      assert.deepStrictEqual(sync.pick(without(2), 2, none, 100), [req(3, 0), req(3, 1)])
      assert.deepStrictEqual(sync.pick(all, 2, none, 100), [req(2, 0), req(2, 1)])
    })

    it("the rarest piece is chosen wherever the scan starts; ties go to the first from the start", () => {
      random.mockReturnValue(0.99) // the scan starts at piece 10
      const sync = Synchronizer.make(eleven.meta, { random })
      for (const i of [0, 1, 2, 3]) sync.markHave(i)
      // Piece 9 alone is the rarest (availability 1), the rest 2.
      sync.addAvailability(all, 1)
      sync.addAvailability(without(9), 1)
      assert.deepStrictEqual(piecesOf(sync.pick(all, 2, none, 100)), [9])
      // Ties now (all 2): the first from the start (the last piece, of one
      // block), then round to the first needed.
      assert.deepStrictEqual(piecesOf(sync.pick(all, 2, none, 100)), [10, 4])
      random.mockReturnValue(6.5 / 11)
      assert.deepStrictEqual(piecesOf(sync.pick(without(4), 2, none, 100)), [6])
    })

    it("started pieces are finished before new ones are opened", () => {
      const sync = Synchronizer.make(eleven.meta, { random })
      for (const i of [7, 8, 9, 10]) sync.markHave(i)
      rising(sync)
      assert.deepStrictEqual(sync.pick(all, 1, none, 100), [req(0, 0)])
      // Piece 3 becomes the rarest, but piece 0 was started: its other block first.
      for (let k = 0; k < 4; k++) sync.addAvailability(only(3), -1)
      assert.deepStrictEqual(sync.pick(all, 1, none, 100), [req(0, 1)])
      // Piece 0 is fully requested: now the rarest new one.
      assert.deepStrictEqual(sync.pick(all, 1, none, 100), [req(3, 0)])
      // A request that timed out goes out again before anything new.
      sync.release(req(0, 1))
      assert.deepStrictEqual(sync.pick(all, 3, none, 100), [req(0, 1), req(3, 1), req(1, 0)])
      // A peer without the started piece gets a new one.
      assert.deepStrictEqual(sync.pick(only(6), 5, none, 100), [req(6, 0), req(6, 1)])
    })

    it("opens at most maxOpen pieces", () => {
      const sync = Synchronizer.make(eleven.meta, { random })
      const first = sync.pick(all, 100, none, 3)
      assert.strictEqual(sync.open.size, 3)
      assert.deepStrictEqual(piecesOf(first), [...sync.open.keys()])
      assert.strictEqual(first.length, [...sync.open.keys()].reduce((n, i) => n + sync.blocksIn(i), 0))
      assert.deepStrictEqual(sync.pick(all, 100, keysOf(first), 3), [], "no duplicates while pieces are unopened")
      assert.strictEqual(sync.open.size, 3)
      const more = sync.pick(all, 100, keysOf(first), 4)
      assert.strictEqual(more.length, 2)
      assert.strictEqual(sync.open.size, 4)
      // Completing a piece frees a slot.
      const piece = more[0]!.index
      sync.verified(complete(sync, eleven, piece))
      assert.strictEqual(sync.open.size, 3)
      assert.strictEqual(sync.pick(all, 100, none, 4).length, 2)
      assert.strictEqual(sync.open.size, 4)
    })

    it("n <= 0 picks nothing", () => {
      const sync = Synchronizer.make(eleven.meta, { random })
      assert.deepStrictEqual(sync.pick(all, 0, none, 100), [])
      assert.deepStrictEqual(sync.pick(all, -3, none, 100), [])
      assert.strictEqual(sync.open.size, 0)
    })
  })

  describe("endgame", () => {
    beforeEach(() => {
      random.mockReturnValue(0) // ties: lowest index
    })
    afterEach(() => random.mockReset())

    it("duplicates blocks assigned to other peers, never one this peer already has", () => {
      const sync = Synchronizer.make(three.meta, { random })
      const assignedA = new Set<number>()
      const assignedB = new Set<number>()
      const give = (assigned: Set<number>, rs: ReadonlyArray<BlockRequest>) => {
        for (const r of rs) assigned.add(blockKey(r.index, r.begin))
        return rs
      }

      const a = give(assignedA, sync.pick(all, 3, assignedA, 100))
      assert.deepStrictEqual(a, [req(0, 0), req(0, 1), req(1, 0)])
      // Piece 2 is not open yet: no endgame, B gets fresh blocks first, then
      // (everything open now) duplicates of A's, never of its own picks.
      const b = give(assignedB, sync.pick(all, 10, assignedB, 100))
      assert.deepStrictEqual(b, [req(1, 1), req(2, 0, 2000), req(0, 0), req(0, 1), req(1, 0)])
      assert.deepStrictEqual([...sync.open.get(0)!.requested], [2, 2])
      // A gets duplicates of B's blocks only.
      const a2 = give(assignedA, sync.pick(all, 10, assignedA, 100))
      assert.deepStrictEqual(a2, [req(1, 1), req(2, 0, 2000)])
      assert.deepStrictEqual(sync.pick(all, 10, assignedA, 100), [], "A has every block already")
      assert.deepStrictEqual(sync.pick(all, 10, assignedB, 100), [], "so has B")
      // A third peer with only piece 2 duplicates just that block.
      assert.deepStrictEqual(sync.pick(only(2), 10, none, 100), [req(2, 0, 2000)])
      assert.deepStrictEqual([...sync.open.get(2)!.requested], [3])
    })

    it("received blocks are not requested again", () => {
      const sync = Synchronizer.make(three.meta, { random })
      const a = sync.pick(all, 10, none, 100)
      assert.strictEqual(a.length, 5)
      assert.isTrue(sync.receive(0, 0, three.block(0, 0, blockSize), "A").fresh)
      assert.isTrue(sync.receive(2, 0, three.block(2, 0, 2000), "A").fresh)
      // B (assigned nothing) gets duplicates of the three blocks still missing.
      assert.deepStrictEqual(sync.pick(all, 10, none, 100), [req(0, 1), req(1, 0), req(1, 1)])
      // Released everywhere (timeouts): fresh requests again, still not the received ones.
      for (const r of [req(0, 1), req(1, 0), req(1, 1)]) {
        sync.release(r)
        sync.release(r)
      }
      assert.deepStrictEqual([...sync.open.get(1)!.requested], [0, 0])
      assert.deepStrictEqual(sync.pick(all, 2, none, 100), [req(0, 1), req(1, 0)])
    })

    it("no endgame while a needed piece is unopened, even if the peer lacks it", () => {
      const sync = Synchronizer.make(three.meta, { random })
      const a = sync.pick(only(0), 10, none, 100)
      assert.deepStrictEqual(a, [req(0, 0), req(0, 1)])
      assert.deepStrictEqual(sync.pick(only(0), 10, none, 100), [])
    })
  })

  describe("claim", () => {
    it("gives a missing block's place in its piece once; the block received there is not copied", () => {
      const sync = Synchronizer.make(three.meta, { random })
      assert.isUndefined(sync.claim(0, 0, blockSize), "not open")
      sync.pick(all, 10, none, 100)
      assert.isUndefined(sync.claim(0, 100, blockSize), "misaligned")
      assert.isUndefined(sync.claim(2, 0, blockSize), "longer than the short last block")
      const place = sync.claim(0, blockSize, blockSize)!
      assert.strictEqual(place.buffer, sync.open.get(0)!.buffer.buffer)
      assert.isUndefined(sync.claim(0, blockSize, blockSize), "claimed already")
      // The connection writes the block there; `receive` finds it in place.
      place.set(three.block(0, blockSize, blockSize))
      assert.isTrue(sync.receive(0, blockSize, place, "A").fresh)
      assert.isUndefined(sync.claim(0, blockSize, blockSize), "received")
      // Another peer's copy of the first block, and the piece checks out whole.
      const done = sync.receive(0, 0, three.block(0, 0, blockSize), "B").complete!
      assert.deepStrictEqual(done.buffer, three.block(0, 0, 2 * blockSize))
      assert.strictEqual(done.claims, 0)
    })

    it("a piece with a claim never settled does not lend its buffer to the next piece", () => {
      const sync = Synchronizer.make(three.meta, { random })
      sync.pick(all, 10, none, 100)
      const lost = sync.claim(0, 0, blockSize)!
      lost.set(three.block(0, 0, blockSize))
      // Its connection died before the block reached `receive`: another peer's copy completes the piece.
      sync.receive(0, 0, three.block(0, 0, blockSize), "B")
      const zero = sync.receive(0, blockSize, three.block(0, blockSize, blockSize), "B").complete!
      sync.failed(zero)
      sync.pick(only(0), 10, none, 100)
      assert.notStrictEqual(sync.open.get(0)!.buffer.buffer, zero.buffer.buffer)
      // Settled claims do lend it (piece 2 is still open: the buffers are kept).
      const one = complete(sync, three, 1)
      sync.failed(one)
      sync.pick(only(1), 10, none, 100)
      assert.strictEqual(sync.open.get(1)!.buffer.buffer, one.buffer.buffer)
    })

    it("unclaim settles a block the Orchestrator will not take", () => {
      const sync = Synchronizer.make(three.meta, { random })
      sync.pick(only(0), 10, none, 100)
      const place = sync.claim(0, 0, blockSize)!
      sync.unclaim(0, 0, place)
      assert.strictEqual(sync.open.get(0)!.claims, 0)
      assert.isDefined(sync.claim(0, 0, blockSize), "claimable again")
    })
  })

  describe("receive", () => {
    it("ignores blocks of unopened pieces, misaligned, out of range, wrong lengths and duplicates", () => {
      const sync = Synchronizer.make(three.meta, { random })
      assert.deepStrictEqual(sync.receive(0, 0, three.block(0, 0, blockSize), "A"), { fresh: false }, "not open")
      sync.pick(all, 10, none, 100)
      assert.isFalse(sync.receive(0, 100, three.block(0, 100, blockSize), "A").fresh, "misaligned")
      assert.isFalse(sync.receive(0, 2 * blockSize, new Uint8Array(blockSize), "A").fresh, "past the piece")
      assert.isFalse(sync.receive(0, 0, three.block(0, 0, 1000), "A").fresh, "too short")
      assert.isFalse(sync.receive(2, 0, new Uint8Array(blockSize), "A").fresh, "longer than the short last block")
      assert.isFalse(sync.receive(7, 0, new Uint8Array(blockSize), "A").fresh, "no such piece")
      assert.strictEqual(sync.open.get(0)!.receivedCount, 0)

      assert.deepStrictEqual(sync.receive(0, 0, three.block(0, 0, blockSize), "A"), { fresh: true })
      assert.deepStrictEqual(
        sync.receive(0, 0, new Uint8Array(blockSize).fill(7), "B"),
        { fresh: false },
        "a duplicate is ignored"
      )
      assert.strictEqual(sync.open.get(0)!.receivedCount, 1)
      assert.deepStrictEqual([...contributorsOf(sync.open.get(0)!)], ["A"])
      const last = sync.receive(2, 0, three.block(2, 0, 2000), "B")
      assert.isTrue(last.fresh)
      assert.strictEqual(last.complete?.index, 2)
    })
  })

  describe("completion", () => {
    it("complete → pending; failed → picked again; verified → have", () => {
      const sync = Synchronizer.make(three.meta, { random })
      assert.deepStrictEqual(sync.pick(only(0), 2, none, 100), [req(0, 0), req(0, 1)])
      assert.isTrue(sync.receive(0, blockSize, three.block(0, blockSize, blockSize), "B").fresh)
      const result = sync.receive(0, 0, three.block(0, 0, blockSize), "A")
      const piece = result.complete!
      assert.strictEqual(piece.index, 0)
      assert.deepStrictEqual(piece.buffer, three.piece(0))
      assert.deepStrictEqual(contributorsOf(piece), new Set(["A", "B"]))
      assert.isFalse(sync.open.has(0))
      assert.isTrue(sync.isPending(0))
      // Pending pieces are neither needed nor picked.
      assert.isFalse(sync.isInteresting(only(0)))
      assert.deepStrictEqual(sync.pick(only(0), 10, none, 100), [])
      assert.isFalse(sync.isComplete())

      sync.failed(piece)
      assert.isFalse(sync.isPending(0))
      assert.isFalse(sync.has(0))
      assert.strictEqual(sync.haveCount, 0)
      assert.isTrue(sync.isInteresting(only(0)))
      assert.deepStrictEqual(sync.pick(only(0), 10, none, 100), [req(0, 0), req(0, 1)], "downloaded again")
      // The buffer may be reused: the second download must still be exact.
      const again = complete(sync, three, 0, "C")
      assert.deepStrictEqual(again.buffer, three.piece(0))
      assert.deepStrictEqual([...contributorsOf(again)], ["C"])
      sync.verified(again)
      assert.isTrue(sync.has(0))
      assert.strictEqual(sync.haveCount, 1)
      assert.isFalse(sync.isPending(0))
      assert.isFalse(sync.isInteresting(only(0)))
      assert.deepStrictEqual(sync.pick(only(0), 10, none, 100), [])
      assert.strictEqual(sync.completedBytes(), 32 * 1024)
      assert.strictEqual(sync.wantedBytesLeft(), three.meta.length - 32 * 1024)

      fetch(sync, three, 1)
      assert.isFalse(sync.isComplete())
      fetch(sync, three, 2)
      assert.isTrue(sync.isComplete())
      assert.strictEqual(sync.haveCount, 3)
      assert.strictEqual(sync.completedBytes(), three.meta.length)
      assert.strictEqual(sync.wantedBytesLeft(), 0)
      assert.isFalse(sync.isInteresting(all))
      assert.deepStrictEqual(sync.pick(all, 10, none, 100), [])
    })

    it("pieces found on disk count once and are not picked", () => {
      const sync = Synchronizer.make(three.meta, { random })
      sync.markHave(1)
      sync.markHave(1)
      assert.strictEqual(sync.haveCount, 1)
      assert.strictEqual(sync.completedBytes(), 32 * 1024)
      assert.isFalse(sync.isInteresting(only(1)))
      assert.deepStrictEqual(sync.pick(only(1), 10, none, 100), [])
    })
  })

  describe("readers, priorities, sequential", () => {
    /** The pieces opened, in order, when a peer with everything asks for `n` blocks, one at a time. */
    const order = (sync: Synchronizer.State, n: number) =>
      piecesOf(Array.from({ length: n }, () => sync.pick(all, 1, none, 100)).flat())

    it("a reader's window comes first, from its position; two readers take turns; none left, rarest first again", () => {
      const sync = Synchronizer.make(eleven.meta, { random })
      for (let k = 0; k < 11; k++) sync.addAvailability({ has: (i) => i >= k }, 1) // piece 0 the rarest
      sync.setReaders([{ from: 6, to: 7 }])
      assert.deepStrictEqual(order(sync, 4), [6, 7])
      sync.setReaders([{ from: 8, to: 9 }, { from: 3, to: 4 }])
      assert.deepStrictEqual(order(sync, 8), [8, 3, 9, 4], "in turn")
      sync.setReaders([])
      // The usual order again: still the random phase (nothing verified), from the drawn start, 0.5 of the way.
      assert.deepStrictEqual(order(sync, 2), [5], "back to the usual order")
    })

    it("a reader's head piece, all asked of one peer, is asked of the next peer too; other open pieces are not", () => {
      const sync = Synchronizer.make(three.meta, { random })
      sync.setReaders([{ from: 1, to: 1 }])
      const first = sync.pick(all, 2, none, 100)
      assert.deepStrictEqual(piecesOf(first), [1])
      const second = sync.pick(only(1), 2, none, 100)
      assert.deepStrictEqual(second.map((r) => r.begin), first.map((r) => r.begin), "the same blocks, from another")
      sync.setReaders([])
      assert.deepStrictEqual(sync.pick(only(1), 2, none, 100), [], "no reader: no duplicates before endgame")
    })

    it("higher file priorities first; skip is not downloaded; sequential takes pieces in order", () => {
      // Piece ranks: 0 none (file 0 alone, skipped), 1 low (file 2), 2–5 high (file 3), 6 normal (file 4).
      const sync = Synchronizer.make(files.meta, { random })
      sync.setFilePriorities(["skip", "normal", "low", "high", "normal"])
      sync.setSequential(true)
      assert.deepStrictEqual(order(sync, 20), [2, 3, 4, 5, 6, 1])
      assert.isFalse(sync.isWanted(0))
    })
  })

  describe("byte counts", () => {
    it("verified bytes per file, wanted and left follow each piece, whatever its order, and a selection change", () => {
      const sync = Synchronizer.make(files.meta, { random, wanted: [true, false, true, true, true] })
      /** Verified bytes of each file, counted from the pieces. */
      const expected = () =>
        files.meta.files.map((file) => {
          let bytes = 0
          for (let i = file.offset; i < file.offset + file.length; i++) if (sync.has(Math.floor(i / 32768))) bytes++
          return bytes
        })
      assert.deepStrictEqual(sync.fileBytes(), [0, 0, 0, 0, 0])
      for (const index of [6, 2, 0, 4]) {
        sync.markHave(index)
        assert.deepStrictEqual(sync.fileBytes(), expected(), `after piece ${index}`)
      }
      const leftOf = (pieces: ReadonlyArray<number>) =>
        pieces.filter((i) => !sync.has(i)).reduce((n, i) => n + Metainfo.pieceSize(files.meta, i), 0)
      assert.strictEqual(sync.wantedBytesLeft(), leftOf([1, 2, 3, 4, 5, 6]))
      sync.setWantedFiles([true, false, false, false, false])
      assert.strictEqual(sync.wantedBytesLeft(), leftOf([0, 1]))
      sync.markHave(1)
      assert.isTrue(sync.isComplete())
      assert.strictEqual(
        sync.completedBytes(),
        [0, 1, 2, 4, 6].reduce((n, i) => n + Metainfo.pieceSize(files.meta, i), 0)
      )
      assert.deepStrictEqual(sync.fileBytes(), expected())
    })
  })

  describe("file selection", () => {
    const pickAll = (sync: Synchronizer.State, peer = all) => sync.pick(peer, 1000, none, 1000)

    it("never picks pieces of deselected files only; shared pieces are picked", () => {
      // Files 2 and 3 deselected: pieces 2–4 are theirs alone; 1 and 5 are shared.
      const sync = Synchronizer.make(files.meta, { random, wanted: [true, true, false, false, true] })
      assert.isFalse(sync.isInteresting(only(2, 3, 4)))
      assert.deepStrictEqual(pickAll(sync, only(2, 3, 4)), [])
      assert.strictEqual(sync.wantedBytesLeft(), 3 * 32 * 1024 + 3392)

      const picked = pickAll(sync)
      assert.deepStrictEqual(picked.map((r) => r.index).sort(), [0, 0, 1, 1, 5, 5, 6])
      assert.strictEqual(picked.length, 7, "and no endgame duplicates of its own picks")
      for (const index of [0, 1, 5, 6]) sync.verified(complete(sync, files, index))
      assert.isTrue(sync.isComplete())
      assert.deepStrictEqual(pickAll(sync), [])

      // Selecting file 2 later: piece 1 is already here, piece 2 is needed.
      sync.setWantedFiles([true, true, true, false, true])
      assert.isFalse(sync.isComplete())
      assert.deepStrictEqual(piecesOf(pickAll(sync)), [2])
    })

    it("a selected empty file needs no piece (not even the one at its offset)", () => {
      const sync = Synchronizer.make(files.meta, { random, wanted: [false, true, false, false, false] })
      assert.isTrue(sync.isComplete())
      assert.strictEqual(sync.wantedBytesLeft(), 0)
      assert.isFalse(sync.isInteresting(all))
      assert.deepStrictEqual(pickAll(sync), [])
    })

    it("an empty file at the very end needs no piece either", () => {
      const fixture = Fixtures.make([40_000, 0])
      const sync = Synchronizer.make(fixture.meta, { random, wanted: [false, true] })
      assert.isTrue(sync.isComplete())
    })

    it("a missing entry in wanted means selected", () => {
      const sync = Synchronizer.make(files.meta, { random, wanted: [false, false, false] })
      assert.deepStrictEqual([...new Set(pickAll(sync).map((r) => r.index))].sort(), [2, 3, 4, 5, 6])
    })
  })
})
