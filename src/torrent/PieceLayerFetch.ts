/**
 * PieceLayerFetch: a v2-only torrent's piece layers that its metadata did not
 * carry (a magnet link's: they live outside the info dictionary), asked of
 * peers with BEP 52's hash requests, one run of a file's layer per request,
 * each reply checked against the file's pieces root before it is kept.
 *
 * Pure state, owned by the Orchestrator: which runs are asked of whom, since
 * when, and which peers refused them (a refusing peer is not asked that run
 * again). A run asked too long ago goes back to the pool.
 */
import { Result } from "effect"
import * as Hashes from "../protocol/Hashes.ts"
import * as Merkle from "../protocol/Merkle.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import type { PeerKey } from "../peer/PeerEvent.ts"

/** How long a peer has to answer a hash request before another is asked. */
export const answerMillis = 30_000

interface Run {
  readonly range: Hashes.HashRange
  readonly file: number
  asked: { readonly peer: PeerKey; readonly at: number } | undefined
  done: boolean
  readonly refused: Set<PeerKey>
}

export type Received =
  | { readonly _tag: "Unasked" }
  | { readonly _tag: "Bad"; readonly error: Hashes.HashesError }
  /** Kept; `layer` once the file's whole layer is in. */
  | { readonly _tag: "Kept"; readonly file?: number; readonly layer?: Uint8Array }

export const make = (meta: Metainfo.Metainfo) => {
  const missing = Metainfo.missingPieceLayers(meta)
  const files = new Map(missing.map((file) => [meta.files.indexOf(file), {
    layer: new Uint8Array(Math.ceil(file.length / meta.pieceLength) * Merkle.hashSize),
    left: 0
  }]))
  const runs: Array<Run> = []
  for (const [index, state] of files) {
    for (const range of Hashes.layerRequests(meta, meta.files[index]!)) {
      runs.push({ range, file: index, asked: undefined, done: false, refused: new Set() })
      state.left++
    }
  }
  const same = (run: Run, range: Hashes.HashRange) =>
    run.range.index === range.index && run.range.length === range.length &&
    run.range.baseLayer === range.baseLayer && run.range.proofLayers === range.proofLayers &&
    Buffer.compare(run.range.piecesRoot, range.piecesRoot) === 0
  const askedOf = (peer: PeerKey, range: Hashes.HashRange) =>
    runs.find((run) => !run.done && run.asked?.peer === peer && same(run, range))

  return {
    /** The files whose layer is still missing, by index. */
    files: () => [...files.keys()],
    done: () => files.size === 0,
    /** The runs to ask `peer` for now: those nobody is asked and it did not refuse. */
    ask: (peer: PeerKey, now: number): Array<Hashes.HashRange> => {
      const out: Array<Hashes.HashRange> = []
      for (const run of runs) {
        if (run.done || run.asked !== undefined || run.refused.has(peer)) continue
        run.asked = { peer, at: now }
        out.push(run.range)
      }
      return out
    },
    receive: (peer: PeerKey, range: Hashes.HashRange, hashes: Uint8Array): Received => {
      const run = askedOf(peer, range)
      if (run === undefined) return { _tag: "Unasked" }
      const nodes = Hashes.check(run.range, hashes)
      if (Result.isFailure(nodes)) {
        run.asked = undefined
        run.refused.add(peer)
        return { _tag: "Bad", error: nodes.failure }
      }
      run.done = true
      const state = files.get(run.file)!
      // The nodes past the file's last piece are pads: not part of its layer.
      const at = run.range.index * Merkle.hashSize
      state.layer.set(nodes.success.subarray(0, Math.min(nodes.success.length, state.layer.length - at)), at)
      if (--state.left > 0) return { _tag: "Kept" }
      files.delete(run.file)
      return { _tag: "Kept", file: run.file, layer: state.layer }
    },
    /** The peer will not answer `range`: another is asked. */
    rejected: (peer: PeerKey, range: Hashes.HashRange): void => {
      const run = askedOf(peer, range)
      if (run === undefined) return
      run.asked = undefined
      run.refused.add(peer)
    },
    /** The peer left, or took too long (before `now - answerMillis`): its runs go back to the pool. */
    expire: (now: number, gone?: PeerKey): void => {
      for (const run of runs) {
        if (run.done || run.asked === undefined) continue
        if (run.asked.peer === gone) run.asked = undefined
        else if (run.asked.at <= now - answerMillis) {
          run.refused.add(run.asked.peer)
          run.asked = undefined
        }
      }
    }
  }
}

export type PieceLayerFetch = ReturnType<typeof make>
