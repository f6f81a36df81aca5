/**
 * Smart ban (after libtorrent): when a piece that several peers contributed
 * to fails its hash, which of them sent the bad block is unknown. We remember
 * who sent each block and, for the failed copy, each block's hash; when a
 * good copy of the piece is verified later, a peer whose remembered block
 * differs from the good one sent bad data (a culprit), and one whose blocks
 * all match is cleared of that failure.
 *
 * Owned by the Orchestrator fiber; synchronous. Memory: one hash per block
 * of the failed pieces not yet downloaded again (who sent each block of a
 * piece is kept with the piece, `OpenPiece.senders`).
 */
import { createHash } from "node:crypto"
import type { PeerKey } from "../peer/PeerEvent.ts"
import { blockSize } from "../protocol/Block.ts"

export interface Verdict {
  /** Peers that sent a block which differs from the good copy. */
  readonly culprits: ReadonlySet<PeerKey>
  /** Peers that contributed to a failed copy with only good blocks. */
  readonly cleared: ReadonlySet<PeerKey>
}

const sha1 = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest("hex")

const blocksOf = (piece: Uint8Array) => Math.ceil(piece.length / blockSize)
const blockAt = (piece: Uint8Array, b: number) => piece.subarray(b * blockSize, (b + 1) * blockSize)

export const make = () => {
  /** For each failed piece, block by block: the hash each peer's copy had. */
  const failedCopies = new Map<number, Array<Map<PeerKey, string>>>()

  return {
    /** The piece failed its hash: remember what each peer (`senders`, by block) sent. */
    failed: (index: number, piece: Uint8Array, senders: ReadonlyArray<PeerKey | undefined>): void => {
      let copies = failedCopies.get(index)
      if (copies === undefined) failedCopies.set(index, copies = [])
      for (let b = 0; b < blocksOf(piece); b++) {
        const peer = senders[b]
        if (peer === undefined) continue
        const hashes = copies[b] ?? (copies[b] = new Map())
        hashes.set(peer, sha1(blockAt(piece, b)))
      }
    },

    /** The piece passed: judge the peers of its earlier failed copies (none if it never failed). */
    verified: (index: number, piece: Uint8Array): Verdict => {
      const copies = failedCopies.get(index)
      failedCopies.delete(index)
      const culprits = new Set<PeerKey>()
      const contributors = new Set<PeerKey>()
      if (copies === undefined) return { culprits, cleared: contributors }
      copies.forEach((hashes, b) => {
        const good = sha1(blockAt(piece, b))
        for (const [peer, hash] of hashes) {
          contributors.add(peer)
          if (hash !== good) culprits.add(peer)
        }
      })
      return { culprits, cleared: new Set([...contributors].filter((peer) => !culprits.has(peer))) }
    },

    /** Pieces with a failed copy still waiting for a good one. */
    get pending(): number {
      return failedCopies.size
    }
  }
}

export type SmartBan = ReturnType<typeof make>
