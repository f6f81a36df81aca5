import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Hashes from "../../src/protocol/Hashes.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import { v2Torrent } from "./v2Torrents.ts"

const torrentOf = (size: number, pieceLength: number) => v2Torrent([size], pieceLength).full

/** The torrent as a magnet link's metadata leaves it: no piece layers. */
const withoutLayers = (meta: Metainfo.Metainfo) => Result.getOrThrow(Metainfo.fromInfoBytes(meta.info, 1 << 20))

describe("Hashes", () => {
  for (const [size, pieceLength] of [[600 * 16384 + 5, 16384], [37 * 32768, 32768], [3 * 65536 - 1, 65536]] as const) {
    it(`a piece layer asked in runs and answered, each run proven to the root (${size} bytes, ${pieceLength}-byte pieces)`, () => {
      const meta = torrentOf(size, pieceLength)
      const file = meta.files[0]!
      const requests = Hashes.layerRequests(meta, withoutLayers(meta).files[0]!)
      assert.isAtLeast(requests.length, 1)
      const layer = new Uint8Array(file.pieceLayer!.length)
      for (const range of requests) {
        assert.isAtMost(range.length, Hashes.maxNodes)
        const hashes = Hashes.answer(meta, range)!
        const nodes = Result.getOrThrow(Hashes.check(range, hashes))
        layer.set(nodes.subarray(0, Math.min(nodes.length, layer.length - range.index * 32)), range.index * 32)
      }
      assert.deepStrictEqual(layer, file.pieceLayer)
    })
  }

  it("a wrong or short hashes reply is a typed error", () => {
    const meta = torrentOf(600 * 16384, 16384)
    const [range] = Hashes.layerRequests(meta, meta.files[0]!)
    const hashes = Hashes.answer(meta, range!)!
    for (const at of [0, 100 * 32 + 5, hashes.length - 1]) {
      const bad = hashes.slice()
      bad[at]! ^= 1
      const error = Result.getOrThrow(Result.flip(Hashes.check(range!, bad)))
      assert.strictEqual(error.reason, "Proof", `a byte changed at ${at}`)
      assert.strictEqual(error.message, "bad hashes reply: its hashes do not lead to the file's pieces root")
    }
    const short = Result.getOrThrow(Result.flip(Hashes.check(range!, hashes.subarray(32))))
    assert.strictEqual(short.reason, "Size")
    // Right hashes for another place in the layer.
    const other = { ...range!, index: range!.index + range!.length }
    assert.strictEqual(Result.getOrThrow(Result.flip(Hashes.check(other, hashes))).reason, "Proof")
  })

  it("rejects what we cannot or should not answer", () => {
    const meta = torrentOf(8 * 32768, 32768)
    const [range] = Hashes.layerRequests(meta, meta.files[0]!)
    assert.isDefined(Hashes.answer(meta, range!))
    for (
      const bad of [
        { piecesRoot: new Uint8Array(32) }, // no such file
        { baseLayer: 0 }, // block hashes: we keep only the piece layer
        { length: 3 }, // not a power of two
        { index: 1, length: 2 }, // not aligned
        { index: 8, length: 1 }, // past the layer
        { proofLayers: 3 } // up to the root itself
      ]
    ) {
      assert.isUndefined(Hashes.answer(meta, { ...range!, ...bad }), JSON.stringify(Object.keys(bad)))
    }
    // Without the piece layer (a magnet link's metadata), nothing.
    assert.isUndefined(Hashes.answer(withoutLayers(meta), range!))
  })
})
