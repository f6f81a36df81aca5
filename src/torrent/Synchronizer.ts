/**
 * Synchronizer: which blocks to ask which peer for, and what we have.
 *
 * Rarest-first by availability, with a few random pieces first (so a new
 * peer has something to trade quickly), pieces already started are finished
 * before new ones are opened, and in endgame the last outstanding blocks are
 * requested from several peers at once. Deselected files' pieces are skipped.
 * Before all that come the pieces readers of the data wait for (each
 * reader's window from its position, readers served in turn; the head piece
 * of a window is asked of several peers), then higher file priorities;
 * `sequential` takes pieces in order instead of rarest first.
 *
 * It is owned by the Orchestrator fiber alone, so its state is plain mutable
 * data with no locks; every method is synchronous. Its state is reached only
 * through its methods; the byte counts (verified, wanted and left, per file)
 * are kept as pieces come, so a progress snapshot costs nothing per piece.
 */
import { Context, Effect, Layer, Option, Random } from "effect"
import { blockKey, type BlockRequest, blockSize, copyInto } from "../protocol/Block.ts"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as PieceMemory from "./PieceMemory.ts"

/** Pieces a peer has. */
export interface PieceSet {
  readonly has: (index: number) => boolean
}

/** A piece being downloaded: its buffer and the state of each block. */
export interface OpenPiece {
  readonly index: number
  readonly buffer: Uint8Array
  /** Outstanding requests per block (more than one in endgame). */
  readonly requested: Uint8Array
  readonly received: Uint8Array
  receivedCount: number
  /** 1 for each block a connection is writing in place (see `claim`) and the Orchestrator has not seen yet. */
  readonly claimed: Uint8Array
  claims: number
  /** The peer that sent each block (for penalties, and smart ban, when the hash fails). */
  readonly senders: Array<string | undefined>
  /** The peer that opened it, which finishes it first (see `pick`). */
  owner: string | undefined
}

/** What `receive` made of a block. */
export type Received =
  | { readonly fresh: false; readonly shared?: undefined; readonly complete?: undefined }
  | { readonly fresh: true; readonly shared?: true; readonly complete?: OpenPiece }

const randomFirstPieces = 4

/** Per file: "skip" is not downloaded; among the others, higher first. */
export type FilePriority = "skip" | "low" | "normal" | "high"
const priorityRank: Record<FilePriority, number> = { skip: 0, low: 1, normal: 2, high: 3 }

/** Pieces a reader of the data waits for, from the one it needs now (`from`) to `to`, both included. */
export interface Window {
  readonly from: number
  readonly to: number
}

export interface Options {
  readonly wanted?: ReadonlyArray<boolean>
  /**
   * Uniform in [0, 1) for choosing among equally rare pieces (the layer takes
   * Effect's `Random`, so a seeded run repeats); without it, a fixed sequence.
   */
  readonly random?: () => number
  /** Where pieces' buffers come from (a manager's, shared by its torrents); without it, a pool of its own. */
  readonly memory?: PieceMemory.Pool | undefined
}

/** A fixed sequence in [0, 1): the same choices on every run. */
const fixedSequence = () => {
  let x = 1
  return () => (x = (x * 48271) % 2147483647) / 2147483647
}

export const make = (meta: Metainfo.Metainfo, options?: Options) => {
  const count = meta.pieceCount
  const blocksIn = (index: number) => Math.ceil(Metainfo.pieceSize(meta, index) / blockSize)
  /** 1 for each verified piece. */
  const have = new Uint8Array(count)
  let haveCount = 0
  let verifiedBytes = 0
  /** Verified bytes per file. */
  const fileBytes = new Array<number>(meta.files.length).fill(0)
  /** 1 for each piece of a selected file. */
  const wanted = new Uint8Array(count).fill(1)
  /** Per piece, the highest rank of its files' priorities. */
  const rank = new Uint8Array(count).fill(priorityRank.normal)
  /** The highest rank of any piece. */
  let topRank = priorityRank.normal
  let sequential = false
  let windows: ReadonlyArray<Window> = []
  /** The window served first next time, so that readers take turns. */
  let nextWindow = 0
  /** Bytes of selected files' pieces not verified yet. */
  let wantedLeft = meta.length
  if (options?.wanted !== undefined) setWantedFiles(options.wanted)
  const nextRandom = options?.random ?? fixedSequence()
  const availability = new Uint32Array(count)
  const open = new Map<number, OpenPiece>()
  /** Complete pieces handed to hashing/writing, not yet verified. */
  const pending = new Set<number>()
  const memory = options?.memory ?? PieceMemory.make(Infinity)

  function setWantedFiles(files: ReadonlyArray<boolean>) {
    wanted.fill(0)
    meta.files.forEach((file, i) => {
      if (files[i] === false || file.length === 0) return
      const first = Math.floor(file.offset / meta.pieceLength)
      const last = Math.floor((file.offset + file.length - 1) / meta.pieceLength)
      for (let p = first; p <= last; p++) wanted[p] = 1
    })
    wantedLeft = 0
    for (let i = 0; i < count; i++) if (wanted[i] === 1 && have[i] === 0) wantedLeft += Metainfo.pieceSize(meta, i)
  }

  /** The files a piece overlaps, from the first that ends after the piece's start. */
  const forFilesOf = (index: number, f: (file: number, bytes: number) => void) => {
    const start = index * meta.pieceLength
    const end = start + Metainfo.pieceSize(meta, index)
    let lo = 0
    let hi = meta.files.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const file = meta.files[mid]!
      if (file.offset + file.length <= start) lo = mid + 1
      else hi = mid
    }
    for (let i = lo; i < meta.files.length && meta.files[i]!.offset < end; i++) {
      const file = meta.files[i]!
      const bytes = Math.min(end, file.offset + file.length) - Math.max(start, file.offset)
      if (bytes > 0) f(i, bytes)
    }
  }

  /** A piece becomes ours (verified now, or found on disk). */
  const gain = (index: number) => {
    if (have[index] === 1) return
    have[index] = 1
    haveCount++
    const size = Metainfo.pieceSize(meta, index)
    verifiedBytes += size
    if (wanted[index] === 1) wantedLeft -= size
    forFilesOf(index, (file, bytes) => (fileBytes[file]! += bytes))
  }

  /** 1 for each piece that cannot be checked yet (a v2 file whose piece layer is being fetched): never asked for. */
  const held = new Uint8Array(count)
  const needs = (index: number) => wanted[index] === 1 && have[index] === 0 && !pending.has(index) && held[index] === 0

  /** Whether `block` is the claimed view of block `b` of `piece`; if so, the claim is settled. */
  const settle = (piece: OpenPiece, b: number, block: Uint8Array): boolean => {
    const inPlace = piece.claimed[b] === 1 && block.buffer === piece.buffer.buffer &&
      block.byteOffset === piece.buffer.byteOffset + b * blockSize
    if (inPlace) {
      piece.claimed[b] = 0
      piece.claims--
    }
    return inPlace
  }

  /** A closed piece's buffer, for the next piece, unless a connection may still write to it. */
  const recycle = (piece: OpenPiece) => memory.give(piece.buffer, piece.claims === 0)

  /** Undefined when the pieces' memory is taken (see `PieceMemory`). */
  const openPiece = (index: number): OpenPiece | undefined => {
    const size = Metainfo.pieceSize(meta, index)
    const buffer = memory.take(size, open.size === 0)
    if (buffer === undefined) return undefined
    const blocks = blocksIn(index)
    const piece: OpenPiece = {
      index,
      buffer,
      requested: new Uint8Array(blocks),
      received: new Uint8Array(blocks),
      receivedCount: 0,
      claimed: new Uint8Array(blocks),
      claims: 0,
      senders: new Array(blocks),
      owner: undefined
    }
    open.set(index, piece)
    return piece
  }

  const requestOf = (index: number, block: number): BlockRequest => {
    const begin = block * blockSize
    return { index, begin, length: Math.min(blockSize, Metainfo.pieceSize(meta, index) - begin) }
  }

  /** Unrequested blocks of `piece`, up to `n`, marked requested. */
  const takeBlocks = (piece: OpenPiece, n: number, out: Array<BlockRequest>) => {
    for (let b = 0; b < piece.requested.length && out.length < n; b++) {
      if (piece.received[b] === 0 && piece.requested[b] === 0) {
        piece.requested[b] = 1
        out.push(requestOf(piece.index, b))
      }
    }
  }

  const openable = (index: number, peer: PieceSet) => needs(index) && !open.has(index) && peer.has(index)

  /** The first piece a reader waits for that the peer can give, readers taking turns. */
  const forReaders = (peer: PieceSet): number | undefined => {
    for (let k = 0; k < windows.length; k++) {
      const window = windows[(nextWindow + k) % windows.length]!
      for (let i = window.from; i <= window.to; i++) {
        if (!openable(i, peer)) continue
        nextWindow = (nextWindow + k + 1) % windows.length
        return i
      }
    }
    return undefined
  }

  /**
   * The piece to open next for this peer: what readers wait for; else the
   * highest rank, then the rarest (in the random phase and in sequential
   * mode, rarity does not count). Ties go to the first met in a scan from a
   * random piece onward (from the first piece in sequential mode). The scan
   * stops at a piece nothing can beat: of the top rank and held by this peer
   * alone (any piece of the top rank when rarity does not count). From one
   * seeder that is the first piece it meets, where drawing a random number
   * per tie made each choice a pass over every piece (quadratic in the
   * piece count).
   */
  const choosePiece = (peer: PieceSet): number | undefined => {
    const read = forReaders(peer)
    if (read !== undefined) return read
    let best: number | undefined
    let bestRank = 0
    let bestAvailability = Infinity
    const rarity = !sequential && haveCount >= randomFirstPieces
    const start = sequential ? 0 : Math.floor(nextRandom() * count)
    for (let k = 0; k < count; k++) {
      const i = start + k < count ? start + k : start + k - count
      if (rank[i]! < bestRank || !openable(i, peer)) continue
      const a = rarity ? availability[i]! : 0
      if (rank[i]! > bestRank || a < bestAvailability) {
        best = i
        bestRank = rank[i]!
        bestAvailability = a
        if (bestRank === topRank && a <= 1) break
      }
    }
    return best
  }

  /** Blocks of the readers' head pieces not yet received, asked of this peer too (whoever answers first wins). */
  const headBlocks = (
    peer: PieceSet,
    n: number,
    assigned: { readonly has: (key: number) => boolean },
    out: Array<BlockRequest>
  ) => {
    for (const window of windows) {
      const piece = open.get(window.from)
      if (piece === undefined || !peer.has(piece.index)) continue
      for (let b = 0; b < piece.requested.length && out.length < n; b++) {
        const key = blockKey(piece.index, b * blockSize)
        if (piece.received[b] === 0 && !assigned.has(key) && !out.some((r) => blockKey(r.index, r.begin) === key)) {
          piece.requested[b]!++
          out.push(requestOf(piece.index, b))
        }
      }
    }
  }

  const hasUnopened = () => {
    for (let i = 0; i < count; i++) if (needs(i) && !open.has(i)) return true
    return false
  }

  return {
    meta,
    /** The pieces being downloaded (read-only: `pick`, `receive` and `release` change them). */
    open: open as ReadonlyMap<number, OpenPiece>,
    /** Whether piece `index` is verified and on disk. */
    has: (index: number) => have[index] === 1,
    /** Our pieces, as a fresh bitfield. */
    bitfield: () => {
      const bits = Bitfield.make(count)
      for (let i = 0; i < count; i++) if (have[i] === 1) bits.set(i)
      return bits
    },
    /** Whether piece `index` is complete and being hashed or written. */
    isPending: (index: number) => pending.has(index),
    get pendingCount() {
      return pending.size
    },
    get haveCount() {
      return haveCount
    },
    /** How many peers have piece `index`. */
    availabilityOf: (index: number) => availability[index]!,
    /** A peer announced piece `index`. */
    addAvailable: (index: number) => {
      availability[index]!++
    },
    blocksIn,
    setWantedFiles,
    /** Holds back (or releases) the pieces of `file`: none is requested while its hashes are unknown. */
    holdFile: (file: number, hold: boolean) => {
      const { length, offset } = meta.files[file]!
      if (length === 0) return
      const last = Math.floor((offset + length - 1) / meta.pieceLength)
      for (let p = Math.floor(offset / meta.pieceLength); p <= last; p++) held[p] = hold ? 1 : 0
    },
    /** Files' priorities ("skip" deselects; the others order the pieces); one per file. */
    setFilePriorities: (priorities: ReadonlyArray<FilePriority>) => {
      setWantedFiles(priorities.map((p) => p !== "skip"))
      rank.fill(0)
      meta.files.forEach((file, i) => {
        const r = priorityRank[priorities[i] ?? "normal"]
        if (file.length === 0 || r === 0) return
        const last = Math.floor((file.offset + file.length - 1) / meta.pieceLength)
        for (let p = Math.floor(file.offset / meta.pieceLength); p <= last; p++) rank[p] = Math.max(rank[p]!, r)
      })
      topRank = rank.reduce((top, r) => Math.max(top, r), 0)
    },
    /** Whether piece `index` belongs to a selected file. */
    isWanted: (index: number) => wanted[index] === 1,
    setSequential: (on: boolean) => {
      sequential = on
    },
    /** The windows of the readers of the data, most urgent piece first in each. */
    setReaders: (next: ReadonlyArray<Window>) => {
      windows = next
      nextWindow = 0
    },
    /** Bytes of verified data. */
    completedBytes: () => verifiedBytes,
    /** Bytes still wanted (selected files, not verified). */
    wantedBytesLeft: () => wantedLeft,
    /** Verified bytes per file. */
    fileBytes: (): ReadonlyArray<number> => [...fileBytes],
    isComplete: () => wantedLeft === 0,
    /** Whether the peer has any piece we still need. */
    isInteresting: (peer: PieceSet) => {
      for (let i = 0; i < count; i++) if (needs(i) && peer.has(i)) return true
      return false
    },
    addAvailability: (peer: PieceSet, delta: 1 | -1) => {
      for (let i = 0; i < count; i++) if (peer.has(i)) availability[i]! += delta
    },
    /**
     * Up to `n` block requests for a peer, not including blocks this peer has
     * already been asked for (`assigned`). Started pieces first, then new ones;
     * in endgame, blocks already requested from others.
     *
     * With `owner`, a peer first finishes the pieces it opened and opens its
     * own before sharing others' (piece affinity): pieces then complete one
     * after another instead of all at once, and a slow peer holds up only its
     * own pieces.
     */
    pick: (
      peer: PieceSet,
      n: number,
      assigned: { readonly has: (key: number) => boolean },
      maxOpen: number,
      owner?: string
    ): Array<BlockRequest> => {
      const out: Array<BlockRequest> = []
      if (n <= 0) return out
      const take = (shared: boolean) => {
        for (const piece of open.values()) {
          if (out.length >= n) return
          if (peer.has(piece.index) && (shared || piece.owner === owner)) takeBlocks(piece, n, out)
        }
      }
      take(owner === undefined)
      while (out.length < n && open.size < maxOpen) {
        const index = choosePiece(peer)
        if (index === undefined) break
        const piece = openPiece(index)
        if (piece === undefined) break
        piece.owner = owner
        takeBlocks(piece, n, out)
      }
      if (out.length < n) take(true)
      if (out.length < n) headBlocks(peer, n, assigned, out)
      // Endgame only once every needed piece is open: then ask this peer too
      // for blocks other peers were asked for.
      if (out.length >= n || hasUnopened()) return out
      const picked = new Set(out.map((r) => blockKey(r.index, r.begin)))
      for (const piece of open.values()) {
        if (!peer.has(piece.index)) continue
        for (let b = 0; b < piece.requested.length && out.length < n; b++) {
          const key = blockKey(piece.index, b * blockSize)
          if (piece.received[b] === 0 && !assigned.has(key) && !picked.has(key)) {
            piece.requested[b]!++
            out.push(requestOf(piece.index, b))
          }
        }
      }
      return out
    },
    /** A request that will not be answered (timeout, choke, disconnect). */
    release: (request: BlockRequest) => {
      const piece = open.get(request.index)
      const b = request.begin / blockSize
      if (piece !== undefined && piece.requested[b]! > 0) piece.requested[b]!--
    },
    /**
     * Stores a received block. Returns the piece when it is complete, whether
     * the block was new (false for duplicates and blocks never asked for), and
     * whether other peers were asked for it too.
     */
    receive: (index: number, begin: number, block: Uint8Array, from: string): Received => {
      const piece = open.get(index)
      const b = begin / blockSize
      if (piece === undefined || !Number.isInteger(b) || b >= piece.received.length) return { fresh: false } as const
      const inPlace = settle(piece, b, block)
      const expected = requestOf(index, b).length
      if (block.length !== expected || piece.received[b] === 1) return { fresh: false } as const
      if (!inPlace) copyInto(piece.buffer, block, begin)
      piece.received[b] = 1
      piece.receivedCount++
      piece.senders[b] = from
      // Requested from more than one peer (endgame): the others' requests are now moot.
      const shared = piece.requested[b]! > 1 ? { shared: true as const } : {}
      if (piece.receivedCount < piece.received.length) return { fresh: true, ...shared }
      open.delete(index)
      pending.add(index)
      return { fresh: true, ...shared, complete: piece }
    },
    /**
     * Where a connection writes block `begin` of piece `index` as it reads it
     * (at once, in the same step), so that the block is copied once: its place
     * in the piece's buffer, if the piece is open, the block missing, of that
     * length and not claimed already. The block then comes to `receive` (or
     * `unclaim`) as that very view. A buffer with claims never settled (the
     * connection died first) is left to the garbage collector, not reused.
     */
    claim: (index: number, begin: number, length: number): Uint8Array | undefined => {
      const piece = open.get(index)
      const b = begin / blockSize
      if (piece === undefined || !Number.isInteger(b) || b >= piece.received.length) return undefined
      if (piece.received[b] === 1 || piece.claimed[b] === 1 || requestOf(index, b).length !== length) return undefined
      piece.claimed[b] = 1
      piece.claims++
      return piece.buffer.subarray(begin, begin + length)
    },
    /** A block that will not be received after all (see `claim`). */
    unclaim: (index: number, begin: number, block: Uint8Array) => {
      const piece = open.get(index)
      if (piece !== undefined) settle(piece, begin / blockSize, block)
    },
    /** The piece's hash matched and it is on disk. */
    verified: (piece: OpenPiece) => {
      pending.delete(piece.index)
      gain(piece.index)
      recycle(piece)
    },
    /** The piece's hash did not match: download it again. */
    failed: (piece: OpenPiece) => {
      pending.delete(piece.index)
      recycle(piece)
    },
    /** Marks pieces found valid on disk at start-up. */
    markHave: gain
  }
}

export type State = ReturnType<typeof make>

/** The peers that sent blocks of the piece. */
export const contributorsOf = (piece: OpenPiece): Set<string> =>
  new Set(piece.senders.filter((peer): peer is string => peer !== undefined))

export class Synchronizer extends Context.Service<Synchronizer, State>()("effect-torrent/torrent/Synchronizer") {
  /** Takes pieces' buffers from the `PieceMemory` provided, if any. */
  static readonly layer = (meta: Metainfo.Metainfo, options?: Omit<Options, "random" | "memory">) =>
    Layer.effect(
      Synchronizer,
      Effect.gen(function*() {
        const random = yield* Random.Random
        const memory = Option.getOrUndefined(yield* Effect.serviceOption(PieceMemory.PieceMemory))
        return Synchronizer.of(make(meta, { ...options, memory, random: () => random.nextDoubleUnsafe() }))
      })
    )
}
