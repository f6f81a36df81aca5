/**
 * BEP 52's hash messages over a torrent's v2 trees: answering a peer's
 * `hash request` from our piece layers, asking for a file's piece layer
 * (a magnet link's metadata does not carry them), and checking a `hashes`
 * reply against the file's pieces root.
 *
 * We keep piece layers, not block hashes, so we answer requests for the
 * piece layer and above (what a peer needs to check pieces) and refuse
 * those below it.
 */
import { Result, Schema } from "effect"
import * as Merkle from "./Merkle.ts"
import type * as Metainfo from "./Metainfo.ts"

/** The fields of a HashRequest, Hashes or HashReject message. */
export interface HashRange {
  readonly piecesRoot: Uint8Array
  readonly baseLayer: number
  readonly index: number
  readonly length: number
  readonly proofLayers: number
}

/** Most nodes one request asks for: its reply (8 KiB and the uncles) fits a frame of a block. */
export const maxNodes = 256

export class HashesError extends Schema.TaggedError<HashesError>()("HashesError", {
  reason: Schema.Literals(["Size", "Proof"]),
  detail: Schema.String
}) {
  override get message() {
    return `bad hashes reply: ${this.detail}`
  }
}

/** The tree a request is about: the file, its height and the number of nodes in the layer asked for. */
const treeOf = (meta: Metainfo.Metainfo, range: HashRange) => {
  const file = meta.files.find((f) =>
    f.piecesRoot !== undefined && Buffer.compare(f.piecesRoot, range.piecesRoot) === 0
  )
  if (file === undefined) return undefined
  const height = Merkle.height(Merkle.blocksIn(file.length))
  return { file, height, width: 2 ** (height - range.baseLayer) }
}

/** Whether `range` is a well-formed ask of `tree`: an aligned run of a power of two within its layer, proven at most to below the root. */
const fits = (range: HashRange, height: number) =>
  range.baseLayer < height && range.length > 0 && (range.length & (range.length - 1)) === 0 &&
  range.index % range.length === 0 && range.index + range.length <= 2 ** (height - range.baseLayer) &&
  range.proofLayers < height - range.baseLayer

/** How many uncles prove `range`: from its nodes' own subtree up to layer `baseLayer + proofLayers`. */
export const unclesIn = (range: HashRange): number => Math.max(0, range.proofLayers - Math.log2(range.length) + 1)

/**
 * The `hashes` of our answer to a peer's request (the nodes, then their
 * uncles), or undefined to reject it: a file we do not know, a layer below
 * its piece layer, or a range that does not fit its tree.
 */
export const answer = (meta: Metainfo.Metainfo, range: HashRange): Uint8Array | undefined => {
  const tree = treeOf(meta, range)
  if (tree === undefined || tree.file.pieceLayer === undefined || !fits(range, tree.height)) return undefined
  const pieceLayer = Merkle.pieceLayer(meta.pieceLength)
  if (range.baseLayer < pieceLayer) return undefined
  const layer = Merkle.layerAbove(tree.file.pieceLayer, pieceLayer, range.baseLayer)
  const nodes = new Uint8Array(range.length * Merkle.hashSize)
  for (let i = 0; i < range.length; i++) {
    const at = (range.index + i) * Merkle.hashSize
    nodes.set(
      at < layer.length ? layer.subarray(at, at + Merkle.hashSize) : Merkle.padHash(range.baseLayer),
      i * Merkle.hashSize
    )
  }
  const uncles = Merkle.uncles(layer, range.baseLayer, range.index, range.length, range.proofLayers)
  return Buffer.concat([nodes, ...uncles])
}

/** The requests for `file`'s whole piece layer, in runs of at most `maxNodes` nodes, each proven to the root. */
export const layerRequests = (meta: Metainfo.Metainfo, file: Metainfo.FileEntry): Array<HashRange> => {
  const baseLayer = Merkle.pieceLayer(meta.pieceLength)
  const height = Merkle.height(Merkle.blocksIn(file.length))
  const width = 2 ** (height - baseLayer)
  const length = Math.min(width, maxNodes)
  const pieces = Math.ceil(file.length / meta.pieceLength)
  const out: Array<HashRange> = []
  for (let index = 0; index < pieces; index += length) {
    out.push({ piecesRoot: file.piecesRoot!, baseLayer, index, length, proofLayers: height - baseLayer - 1 })
  }
  return out
}

/** The nodes of a `hashes` reply to `asked`, once they are proven to lead to the file's pieces root. */
export const check = (asked: HashRange, hashes: Uint8Array): Result.Result<Uint8Array, HashesError> => {
  const expected = (asked.length + unclesIn(asked)) * Merkle.hashSize
  if (hashes.length !== expected) {
    return Result.fail(
      new HashesError({ reason: "Size", detail: `${hashes.length} bytes of hashes; the request takes ${expected}` })
    )
  }
  const nodes = hashes.subarray(0, asked.length * Merkle.hashSize)
  const uncles: Array<Uint8Array> = []
  for (let at = nodes.length; at < hashes.length; at += Merkle.hashSize) {
    uncles.push(hashes.subarray(at, at + Merkle.hashSize))
  }
  const root = Merkle.rootFromProof(nodes, asked.baseLayer, asked.index, asked.length, uncles)
  return Buffer.compare(root, asked.piecesRoot) === 0
    ? Result.succeed(nodes.slice())
    : Result.fail(new HashesError({ reason: "Proof", detail: "its hashes do not lead to the file's pieces root" }))
}
