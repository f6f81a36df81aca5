/**
 * BitTorrent v2 (BEP 52) Merkle trees: SHA-256 over each file's 16 KiB
 * blocks, the leaves padded with zero hashes up to a power of two. A file's
 * `pieces root` is its tree's root; its `piece layer` the layer whose nodes
 * each cover one piece, which is what a piece is checked against.
 *
 * Layers are numbered from the leaves: layer 0 holds the block hashes, layer
 * `log2(piece length / 16 KiB)` the piece hashes.
 */
import { createHash } from "node:crypto"

/** The unit of the tree's leaves. */
export const blockSize = 16 * 1024

/** A hash is 32 bytes. */
export const hashSize = 32

/** The smallest power of two at least `n` (1 for 0). */
export const nextPowerOfTwo = (n: number): number => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)))

/**
 * The root of the tree over `data`'s blocks (the last may be short) with its
 * leaves padded by zero hashes to `leaves`, a power of two at least the
 * number of blocks. One buffer of `leaves` hashes is the only allocation
 * besides the digests.
 *
 * Self-contained (its one helper comes as an argument): the PieceWorker's
 * thread runs it from its source text.
 */
export function blocksRoot(
  sha256: (data: Uint8Array) => Uint8Array,
  data: Uint8Array,
  leaves: number
): Uint8Array {
  const size = 32, block = 16384
  const nodes = new Uint8Array(leaves * size)
  const blocks = Math.ceil(data.length / block)
  for (let i = 0; i < blocks; i++) nodes.set(sha256(data.subarray(i * block, (i + 1) * block)), i * size)
  // Pairs are hashed in place, each parent written over its left child's slot.
  const pair = new Uint8Array(2 * size)
  for (let width = leaves; width > 1; width /= 2) {
    for (let i = 0; i < width / 2; i++) {
      pair.set(nodes.subarray(2 * i * size, (2 * i + 2) * size))
      nodes.set(sha256(pair), i * size)
    }
  }
  return nodes.slice(0, size)
}

export const sha256 = (data: Uint8Array): Uint8Array => createHash("sha256").update(data).digest()

const parent = (left: Uint8Array, right: Uint8Array): Uint8Array =>
  createHash("sha256").update(left).update(right).digest()

/** The hash of a subtree of zero leaves at `layer` (0: the zero hash itself), memoized. */
const padHashes: Array<Uint8Array> = [new Uint8Array(hashSize)]
export const padHash = (layer: number): Uint8Array => {
  while (padHashes.length <= layer) {
    const below = padHashes[padHashes.length - 1]!
    padHashes.push(parent(below, below))
  }
  return padHashes[layer]!
}

/** The hashes of `layer` (concatenated, `count` of them) at the layer above, padded as the tree is. */
const up = (hashes: Uint8Array, layer: number): Uint8Array => {
  const count = hashes.length / hashSize
  const out = new Uint8Array(Math.ceil(count / 2) * hashSize)
  for (let i = 0; i < count; i += 2) {
    const left = hashes.subarray(i * hashSize, (i + 1) * hashSize)
    const right = i + 1 < count ? hashes.subarray((i + 1) * hashSize, (i + 2) * hashSize) : padHash(layer)
    out.set(parent(left, right), (i / 2) * hashSize)
  }
  return out
}

/**
 * Layer `to` of a tree whose layer `from` is `hashes` (concatenated; the
 * nodes past them are pads), itself concatenated without the trailing pads.
 */
export const layerAbove = (hashes: Uint8Array, from: number, to: number): Uint8Array => {
  let layer = hashes
  for (let at = from; at < to; at++) layer = up(layer, at)
  return layer
}

/** The layer a tree of `leaves` leaves has its root at. */
export const height = (leaves: number): number => Math.log2(nextPowerOfTwo(leaves))

/**
 * The root of a tree whose layer `layer` is `hashes`, as tall as a file of
 * `blocks` blocks makes it.
 */
export const rootOf = (hashes: Uint8Array, layer: number, blocks: number): Uint8Array => {
  const top = height(blocks)
  return top <= layer ? hashes.slice(0, hashSize) : layerAbove(hashes, layer, top).slice(0, hashSize)
}

/** The layer whose nodes cover one piece of `pieceLength` bytes. */
export const pieceLayer = (pieceLength: number): number => Math.log2(pieceLength / blockSize)

/** Blocks in a file of `length` bytes. */
export const blocksIn = (length: number): number => Math.ceil(length / blockSize)

/**
 * The uncle hashes proving `count` nodes of layer `base` from `index` (count
 * a power of two, index a multiple of it) up to layer `base + proofLayers`,
 * as BEP 52's `hashes` message carries them after the nodes: the sibling of
 * each ancestor from the nodes' own subtree root up. `layer` is the tree's
 * layer `base` (without pads).
 */
export const uncles = (layer: Uint8Array, base: number, index: number, count: number, proofLayers: number) => {
  const out: Array<Uint8Array> = []
  let hashes = layerAbove(layer, base, base + Math.log2(count))
  let at = index / count
  for (let l = base + Math.log2(count); l <= base + proofLayers; l++) {
    const sibling = at ^ 1
    out.push(
      sibling * hashSize < hashes.length ? hashes.slice(sibling * hashSize, (sibling + 1) * hashSize) : padHash(l)
    )
    hashes = up(hashes, l)
    at >>= 1
  }
  return out
}

/**
 * The root that `count` nodes of layer `base` starting at `index` and their
 * uncles (as `uncles` lists them) lead to: what a `hashes` reply is checked
 * against.
 */
export const rootFromProof = (
  nodes: Uint8Array,
  base: number,
  index: number,
  count: number,
  proof: ReadonlyArray<Uint8Array>
): Uint8Array => {
  let node = rootOf(nodes, base, count << base)
  let at = index / count
  for (const uncle of proof) {
    node = (at & 1) === 0 ? parent(node, uncle) : parent(uncle, node)
    at >>= 1
  }
  return node
}
