/**
 * MetadataAssembly: the state of fetching one torrent's info dictionary over
 * ut_metadata (BEP 9) from several peers, without I/O.
 *
 * Each peer claims a `metadata_size` in its extended handshake. An attempt
 * takes the size of the first claimant that asks for work, and hands its
 * 16 KiB pieces out to every peer that claimed the same size, a few at a
 * time each, pieces asked of the fewest peers first. So pieces spread over
 * the peers, and once all are out, a peer with room is asked for pieces
 * others are asked for too: a peer that sits on its pieces delays no one
 * (the first copy in wins). A request unanswered for `requestTimeoutMillis`
 * no longer counts as asked, and `expire` takes it back, for the fetcher to
 * count against the peer.
 *
 * A block that is out of range, of the wrong size, or sent with another
 * `total_size` condemns its sender at once. When every piece is in, the
 * SHA-1 of the whole must be the info-hash. If it is not, the pieces are
 * thrown away and, from then on, each attempt takes every piece from a single
 * peer, so the next failure names its culprit, who is banned; honest peers
 * are never blamed for a liar's blocks.
 */
import * as InfoHash from "../protocol/InfoHash.ts"
import * as Metadata from "../protocol/Metadata.ts"
import type { PeerKey } from "../peer/PeerEvent.ts"

/** Pieces asked of one peer at a time. */
export const maxOutstanding = 2
/**
 * A request unanswered for this long is taken back and counted against the
 * peer. An answer is one 16 KiB message, sent at once by any peer that
 * serves metadata at all; 5 s leaves room for a slow or busy link, and being
 * wrong costs little, since the same piece is asked of other peers meanwhile.
 */
export const requestTimeoutMillis = 5_000

export type Verdict =
  /** Stored, or a late block nobody waits for any more. */
  | { readonly _tag: "Ok" }
  /** The peer sent bad data: drop and ban it. */
  | { readonly _tag: "Bad"; readonly reason: string }
  /** The metadata, verified. */
  | { readonly _tag: "Done"; readonly info: Uint8Array }
  /** The pieces did not hash to the info-hash; `culprit` is set when one peer sent them all. */
  | { readonly _tag: "HashMismatch"; readonly culprit: PeerKey | undefined }

interface Attempt {
  readonly size: number
  /** Each piece received, and who sent it. */
  readonly blocks: Array<{ readonly bytes: Uint8Array; readonly from: PeerKey } | undefined>
  /** For each piece, the peers it is asked of now, and when they were asked. */
  readonly requests: Array<Map<PeerKey, number>>
  /** In single-source mode: the one peer this attempt takes pieces from. */
  source: PeerKey | undefined
}

export class MetadataAssembly {
  /** Each peer's claimed size. */
  private readonly claims = new Map<PeerKey, number>()
  private attempt: Attempt | undefined = undefined
  /** Set after a hash mismatch: each attempt takes all pieces from one peer. */
  private singleSource = false

  constructor(readonly infoHash: InfoHash.InfoHash) {}

  /** Records a peer's `metadata_size`; returns why it is refused, if it is. */
  claim(peer: PeerKey, size: number): string | undefined {
    const problem = Metadata.checkSize(size)
    if (problem === undefined) this.claims.set(peer, size)
    return problem
  }

  /** The next pieces to ask `peer` for (none if it has nothing for us now). */
  next(peer: PeerKey, now: number): Array<number> {
    const size = this.claims.get(peer)
    if (size === undefined) return []
    const count = Metadata.pieceCount(size)
    this.attempt ??= {
      size,
      blocks: new Array(count).fill(undefined),
      requests: Array.from({ length: count }, () => new Map()),
      source: undefined
    }
    const attempt = this.attempt
    if (attempt.size !== size) return []
    if (this.singleSource) {
      attempt.source ??= peer
      if (attempt.source !== peer) return []
    }
    // Room left for this peer, and the missing pieces not asked of it, with how many others have them asked now.
    let room = maxOutstanding
    const open: Array<{ readonly piece: number; readonly askers: number }> = []
    attempt.requests.forEach((asked, piece) => {
      if (attempt.blocks[piece] !== undefined) return
      if (asked.has(peer)) room--
      else open.push({ piece, askers: [...asked.values()].filter((at) => now - at < requestTimeoutMillis).length })
    })
    const picks = open.sort((a, b) => a.askers - b.askers || a.piece - b.piece).slice(0, room).map(({ piece }) => piece)
    for (const piece of picks) attempt.requests[piece]!.set(peer, now)
    return picks
  }

  /** A `data` message from `peer`. */
  received(peer: PeerKey, piece: number, totalSize: number, block: Uint8Array): Verdict {
    const claimed = this.claims.get(peer)
    if (claimed !== undefined && totalSize !== claimed) {
      return { _tag: "Bad", reason: `sent total_size ${totalSize} after claiming a metadata_size of ${claimed}` }
    }
    const attempt = this.attempt
    const asked = attempt?.requests[piece]?.delete(peer) === true
    if (attempt === undefined || !asked || attempt.blocks[piece] !== undefined) {
      // Not (or no longer) asked of this peer; still checked against what it claimed.
      const size = claimed ?? totalSize
      const count = Metadata.pieceCount(size)
      if (piece >= count) return { _tag: "Bad", reason: `sent metadata piece ${piece} of ${count}` }
      return { _tag: "Ok" }
    }
    const expected = Metadata.lengthOf(attempt.size, piece)
    if (block.length !== expected) {
      return { _tag: "Bad", reason: `sent ${block.length} bytes for metadata piece ${piece}; expected ${expected}` }
    }
    attempt.blocks[piece] = { bytes: block.slice(), from: peer }
    const blocks = attempt.blocks.filter((b) => b !== undefined)
    if (blocks.length < attempt.blocks.length) return { _tag: "Ok" }
    const info = Buffer.concat(blocks.map((b) => b.bytes))
    if (InfoHash.names(this.infoHash, info)) return { _tag: "Done", info }
    const culprit = blocks.every((b) => b.from === peer) ? peer : undefined
    this.attempt = undefined
    this.singleSource = true
    return { _tag: "HashMismatch", culprit }
  }

  /** The peer will not send `piece`: the request is taken back. */
  rejected(peer: PeerKey, piece: number): void {
    this.attempt?.requests[piece]?.delete(peer)
  }

  /** Takes back `peer`'s requests older than `requestTimeoutMillis`; returns how many there were. */
  expire(peer: PeerKey, now: number): number {
    let expired = 0
    for (const asked of this.attempt?.requests ?? []) {
      const at = asked.get(peer)
      if (at !== undefined && now - at >= requestTimeoutMillis) {
        asked.delete(peer)
        expired++
      }
    }
    return expired
  }

  /**
   * The peer is gone: its requests are taken back; with `banned`, the pieces
   * it sent are thrown away too. An attempt that no remaining peer can finish
   * (or whose single source left) starts over.
   */
  left(peer: PeerKey, banned = false): void {
    this.claims.delete(peer)
    const attempt = this.attempt
    if (attempt === undefined) return
    if (attempt.source === peer || !this.anyClaims(attempt.size)) {
      this.attempt = undefined
      return
    }
    for (const asked of attempt.requests) asked.delete(peer)
    if (!banned) return
    attempt.blocks.forEach((b, piece) => {
      if (b?.from === peer) attempt.blocks[piece] = undefined
    })
  }

  private anyClaims(size: number): boolean {
    for (const claimed of this.claims.values()) if (claimed === size) return true
    return false
  }
}
