import { assert, describe, it } from "@effect/vitest"
import * as SmartBan from "../../src/torrent/SmartBan.ts"
import { blockSize } from "../../src/protocol/Block.ts"

/** A piece of 3 blocks (the last one short) with distinct bytes. */
const good = Uint8Array.from({ length: 2 * blockSize + 100 }, (_, i) => (i * 7) % 251)
const corrupted = (piece: Uint8Array, block: number) => {
  const copy = piece.slice()
  copy[block * blockSize + 5] ^= 0x01
  return copy
}

describe("SmartBan", () => {
  it("names the peer whose block of the failed copy differs from the good copy, and clears the others", () => {
    const smartBan = SmartBan.make()
    smartBan.failed(7, corrupted(good, 1), ["a", "b", "c"])
    assert.strictEqual(smartBan.pending, 1)
    // The good copy came from others.
    const verdict = smartBan.verified(7, good)
    assert.deepStrictEqual([...verdict.culprits], ["b"])
    assert.deepStrictEqual([...verdict.cleared].sort(), ["a", "c"])
    assert.strictEqual(smartBan.pending, 0)
  })

  it("remembers every failed copy until a good one: a peer that was bad once is named even if it was good later", () => {
    const smartBan = SmartBan.make()
    smartBan.failed(1, corrupted(good, 0), ["a", "b", "b"])
    smartBan.failed(1, corrupted(good, 2), ["b", "a", "c"])
    const verdict = smartBan.verified(1, good)
    assert.deepStrictEqual([...verdict.culprits].sort(), ["a", "c"])
    assert.deepStrictEqual([...verdict.cleared], ["b"])
  })

  it("a piece that never failed judges nobody", () => {
    const smartBan = SmartBan.make()
    const verdict = smartBan.verified(3, good)
    assert.strictEqual(verdict.culprits.size + verdict.cleared.size, 0)
  })
})
