/**
 * MetadataAssembly: the state of fetching one torrent's info dictionary over
 * ut_metadata (BEP 9) from several peers, without I/O.
 *
 * Each peer claims a `metadata_size` in its extended handshake. An attempt
 * takes the size of the first claimant that asks for work, and hands its
 * 16 KiB pieces out to every peer that claimed the same size, a few at a
 * time each. A block that is out of range, of the wrong size, or sent with
 * another `total_size` condemns its sender at once. When every piece is in,
 * the SHA-1 of the whole must be the info-hash. If it is not, the pieces are
 * thrown away and, from then on, each attempt takes every piece from a single
 * peer, so the next failure names its culprit, who is banned; honest peers
 * are never blamed for a liar's blocks.
 */
import * as InfoHash from "../protocol/InfoHash.ts"
import * as Metadata from "../protocol/Metadata.ts"
import type { PeerKey } from "../peer/PeerEvent.ts"

/** Pieces asked of one peer at a time. */
export const maxOutstanding = 2
/** A request not answered in this time goes to another peer, and the slow peer is dropped. */
export const requestTimeoutMillis = 20_000

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
  readonly blocks: Array<Uint8Array | undefined>
  /** Who was asked for each piece, and when. */
  readonly asked: Array<{ readonly peer: PeerKey; readonly at: number } | undefined>
  readonly senders: Set<PeerKey>
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
    this.attempt ??= {
      size,
      blocks: new Array(Metadata.pieceCount(size)).fill(undefined),
      asked: new Array(Metadata.pieceCount(size)).fill(undefined),
      senders: new Set(),
      source: undefined
    }
    const attempt = this.attempt
    if (attempt.size !== size) return []
    if (this.singleSource) {
      attempt.source ??= peer
      if (attempt.source !== peer) return []
    }
    let outstanding = attempt.asked.filter((a, i) => a?.peer === peer && attempt.blocks[i] === undefined).length
    const picks: Array<number> = []
    for (let piece = 0; piece < attempt.blocks.length && outstanding < maxOutstanding; piece++) {
      if (attempt.blocks[piece] !== undefined || attempt.asked[piece] !== undefined) continue
      attempt.asked[piece] = { peer, at: now }
      picks.push(piece)
      outstanding++
    }
    return picks
  }

  /** A `data` message from `peer`. */
  received(peer: PeerKey, piece: number, totalSize: number, block: Uint8Array): Verdict {
    const claimed = this.claims.get(peer)
    if (claimed !== undefined && totalSize !== claimed) {
      return { _tag: "Bad", reason: `sent total_size ${totalSize} after claiming a metadata_size of ${claimed}` }
    }
    const attempt = this.attempt
    if (attempt === undefined || attempt.asked[piece]?.peer !== peer || attempt.blocks[piece] !== undefined) {
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
    attempt.blocks[piece] = block.slice()
    attempt.senders.add(peer)
    if (attempt.blocks.some((b) => b === undefined)) return { _tag: "Ok" }
    const info = Buffer.concat(attempt.blocks as Array<Uint8Array>)
    if (InfoHash.ofInfo(info) === this.infoHash) return { _tag: "Done", info }
    const culprit = attempt.senders.size === 1 ? peer : undefined
    this.attempt = undefined
    this.singleSource = true
    return { _tag: "HashMismatch", culprit }
  }

  /** The peer will not send `piece`: it goes back to the pool. */
  rejected(peer: PeerKey, piece: number): void {
    if (this.attempt?.asked[piece]?.peer === peer) this.attempt.asked[piece] = undefined
  }

  /**
   * The peer is gone: the pieces it was asked for go back to the pool; with
   * `banned`, the pieces it sent are thrown away too. An attempt that no
   * remaining peer can finish (or whose single source left) starts over.
   */
  left(peer: PeerKey, banned = false): void {
    this.claims.delete(peer)
    const attempt = this.attempt
    if (attempt === undefined) return
    if (attempt.source === peer || !this.anyClaims(attempt.size)) {
      this.attempt = undefined
      return
    }
    attempt.asked.forEach((a, i) => {
      if (a?.peer !== peer || (!banned && attempt.blocks[i] !== undefined)) return
      attempt.asked[i] = undefined
      attempt.blocks[i] = undefined
    })
    if (banned) attempt.senders.delete(peer)
  }

  /** Peers with a request older than `requestTimeoutMillis`. */
  stalled(now: number): Set<PeerKey> {
    const slow = new Set<PeerKey>()
    const attempt = this.attempt
    attempt?.asked.forEach((a, i) => {
      if (a !== undefined && attempt.blocks[i] === undefined && now - a.at >= requestTimeoutMillis) slow.add(a.peer)
    })
    return slow
  }

  private anyClaims(size: number): boolean {
    for (const claimed of this.claims.values()) if (claimed === size) return true
    return false
  }
}
