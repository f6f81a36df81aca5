import { assert, describe, it } from "@effect/vitest"
import * as Hashes from "../../src/protocol/Hashes.ts"
import * as PieceLayerFetch from "../../src/torrent/PieceLayerFetch.ts"
import { v2Torrent } from "../protocol/v2Torrents.ts"

/** Files of 600 and 3 pieces and one of a piece. */
const torrents = () => v2Torrent([600 * 16384 - 9, 3 * 16384, 100], 16384)

describe("PieceLayerFetch", () => {
  it("asks each run once, keeps proven replies, and gives each file's whole layer", () => {
    const { bare, full } = torrents()
    const fetch = PieceLayerFetch.make(bare)
    // The file of one piece needs none: its root checks it.
    assert.deepStrictEqual(fetch.files(), [0, 2])
    const asked = fetch.ask("a:1", 0)
    assert.strictEqual(asked.length, 3 + 1) // 600 pieces in runs of 256, and 3 in one
    assert.deepStrictEqual(fetch.ask("b:1", 0), [], "nothing is asked twice")
    const layers = new Map<number, Uint8Array>()
    for (const range of asked) {
      const received = fetch.receive("a:1", range, Hashes.answer(full, range)!)
      assert.strictEqual(received._tag, "Kept")
      if (received._tag === "Kept" && received.layer !== undefined) layers.set(received.file!, received.layer)
    }
    assert.isTrue(fetch.done())
    assert.deepStrictEqual(layers.get(0), full.files[0]!.pieceLayer)
    assert.deepStrictEqual(layers.get(2), full.files[2]!.pieceLayer)
  })

  it("a bad reply, a reject or silence past the deadline sends the run to another peer, never back", () => {
    const { bare, full } = torrents()
    const fetch = PieceLayerFetch.make(bare)
    const [first, second, third, fourth] = fetch.ask("liar:1", 0)
    const wrong = Hashes.answer(full, first!)!.slice()
    wrong[0]! ^= 1
    const bad = fetch.receive("liar:1", first!, wrong)
    assert.isTrue(bad._tag === "Bad" && bad.error.reason === "Proof")
    fetch.rejected("liar:1", second!)
    assert.deepStrictEqual(fetch.receive("other:1", third!, Hashes.answer(full, third!)!)._tag, "Unasked")
    assert.deepStrictEqual(fetch.ask("liar:1", 1000), [], "not asked again of the peer that failed it")
    assert.deepStrictEqual(fetch.ask("honest:1", 1000), [first, second])
    // The liar's other runs: returned once the deadline passes, not before.
    fetch.expire(PieceLayerFetch.answerMillis - 1)
    assert.deepStrictEqual(fetch.ask("late:1", PieceLayerFetch.answerMillis - 1), [])
    fetch.expire(PieceLayerFetch.answerMillis)
    assert.deepStrictEqual(fetch.ask("late:1", PieceLayerFetch.answerMillis), [third, fourth])
    // A peer leaving returns its runs at once.
    fetch.expire(PieceLayerFetch.answerMillis, "late:1")
    assert.deepStrictEqual(fetch.ask("next:1", PieceLayerFetch.answerMillis), [third, fourth])
  })
})
