/**
 * PieceCheck: whether a piece's bytes are the torrent's. A v1 piece is
 * checked by its SHA-1, a v2 piece by the root of the SHA-256 tree over its
 * blocks against its file's piece layer (BEP 52), a hybrid piece by both.
 * Both hashes run where the layers put them (`Digest`, `MerkleHasher`): by the
 * PieceWorker under `TorrentManager.layerNode`.
 */
import { Effect } from "effect"
import { Digest } from "effect/crypto"
import * as Metainfo from "../protocol/Metainfo.ts"
import { MerkleHasher } from "./PieceWorker.ts"

/**
 * A check of `meta`'s pieces: whether `data` is piece `index`. `meta` is read
 * at each call, so a getter sees piece layers learnt since.
 */
export const make = Effect.fnUntraced(function*(meta: () => Metainfo.Metainfo) {
  const digest = yield* Digest.Digest
  const v2 = yield* makeV2(meta)
  return Effect.fnUntraced(function*(index: number, data: Uint8Array) {
    const m = meta()
    if (m.pieces.length > 0) {
      const hash = yield* digest.digest(Digest.sha1, data)
      if (Buffer.compare(hash, Metainfo.pieceHash(m, index)) !== 0) return false
    }
    return yield* v2(index, data)
  })
})

/**
 * The v2 half of the check, for a writer that checks the SHA-1 itself as it
 * writes (`DiskWriter.write`): true for a v1 piece. A v2 piece whose file's
 * piece layer is not known yet fails, unless the torrent is a hybrid: then
 * its SHA-1 stands alone, as for v1 peers.
 */
export const makeV2 = Effect.fnUntraced(function*(meta: () => Metainfo.Metainfo) {
  const merkle = yield* MerkleHasher
  return Effect.fnUntraced(function*(index: number, data: Uint8Array) {
    const m = meta()
    if (m.infoHashV2 === undefined) return true
    const target = Metainfo.pieceTarget(m, index)
    if (target === undefined) return m.pieces.length > 0
    const root = yield* merkle.root(data.subarray(0, target.length), target.leaves)
    return Buffer.compare(root, target.hash) === 0
  })
})
