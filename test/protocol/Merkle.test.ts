import { assert, describe, it } from "@effect/vitest"
import { createHash, randomBytes } from "node:crypto"
import * as Merkle from "../../src/protocol/Merkle.ts"

const sha256 = (...parts: ReadonlyArray<Uint8Array>) => {
  const hash = createHash("sha256")
  for (const part of parts) hash.update(part)
  return hash.digest()
}

/** The tree's root by the book: each layer hashed in pairs, zero leaves to a power of two. */
const byTheBook = (leaves: ReadonlyArray<Uint8Array>, width: number): Buffer => {
  let layer = [...leaves, ...Array.from({ length: width - leaves.length }, () => Buffer.alloc(32))]
  while (layer.length > 1) {
    const up: Array<Uint8Array> = []
    for (let i = 0; i < layer.length; i += 2) up.push(sha256(layer[i]!, layer[i + 1]!))
    layer = up
  }
  return Buffer.from(layer[0]!)
}

const blockHashes = (data: Uint8Array) => {
  const out: Array<Buffer> = []
  for (let at = 0; at < data.length; at += Merkle.blockSize) out.push(sha256(data.subarray(at, at + Merkle.blockSize)))
  return out
}

describe("Merkle", () => {
  it("blocksRoot: SHA-256 of each 16 KiB block (the last short), zero leaves up to the width", () => {
    for (const size of [1, 16384, 16385, 3 * 16384 + 7, 5 * 16384]) {
      const data = randomBytes(size)
      const leaves = blockHashes(data)
      for (const width of [Merkle.nextPowerOfTwo(leaves.length), 8]) {
        assert.deepStrictEqual(
          Buffer.from(Merkle.blocksRoot(Merkle.sha256, data, width)),
          byTheBook(leaves, width),
          `${size} bytes over ${width} leaves`
        )
      }
    }
    // A file of one block: its root is the block's hash.
    const one = randomBytes(100)
    assert.deepStrictEqual(Buffer.from(Merkle.blocksRoot(Merkle.sha256, one, 1)), sha256(one))
  })

  it("rootOf a piece layer pads with the roots of zero subtrees, not with zero hashes", () => {
    // 3 pieces of 4 blocks each: the layer's fourth node is the root of 4 zero leaves.
    const data = randomBytes(11 * Merkle.blockSize + 5)
    const leaves = blockHashes(data)
    const layer = Merkle.layerAbove(Buffer.concat(leaves), 0, 2)
    assert.strictEqual(layer.length, 3 * 32)
    assert.deepStrictEqual(Buffer.from(Merkle.rootOf(layer, 2, leaves.length)), byTheBook(leaves, 16))
    assert.deepStrictEqual(Buffer.from(Merkle.padHash(2)), byTheBook([], 4))
  })

  it("uncles prove any aligned run of a layer up to the root (rootFromProof)", () => {
    const leaves = Array.from({ length: 13 }, () => randomBytes(32))
    const layer = Buffer.concat(leaves)
    const root = byTheBook(leaves, 16)
    const height = 4
    for (const count of [2, 4, 8]) {
      for (let index = 0; index < 16; index += count) {
        const proofLayers = height - 1
        const proof = Merkle.uncles(layer, 0, index, count, proofLayers)
        assert.strictEqual(proof.length, proofLayers - Math.log2(count) + 1)
        const nodes = Buffer.alloc(count * 32)
        for (let i = 0; i < count; i++) if (index + i < 13) nodes.set(leaves[index + i]!, i * 32)
        assert.deepStrictEqual(Buffer.from(Merkle.rootFromProof(nodes, 0, index, count, proof)), root)
        // One node changed: another root.
        nodes[0]! ^= 1
        assert.notDeepEqual(Buffer.from(Merkle.rootFromProof(nodes, 0, index, count, proof)), root)
      }
    }
  })
})
