/**
 * PieceMemory: the buffers of the pieces being downloaded, shared by every
 * torrent of a manager, so that their memory is bounded as a whole: fifty
 * torrents downloading at once each kept up to 16 MiB of pieces open and
 * waiting for the disk, 800 MiB in all.
 *
 * A torrent opens a piece only while the pieces open and pending, over all
 * torrents, stay within the limit, except its first: a torrent with no piece
 * open always gets one, so that every torrent moves.
 *
 * Closed pieces' buffers are kept for the next pieces (of any torrent), so
 * that all of them together stay within the most ever in use at once (or
 * the limit): a torrent seeding after its download keeps that much (16 MiB
 * for one torrent's open and pending pieces), and downloads in bursts (fifty
 * torrents from one seeder) reuse it rather than allocate. Reuse is what
 * bounds the memory: a piece's buffer is shared with the PieceWorker's thread
 * (when it has one), and a dropped one is freed only once that thread
 * collects its garbage too, which it seldom does (it allocates little).
 * Fifty torrents dropping their pieces' buffers as they closed held 200 MiB
 * of them.
 */
import { Context, Layer } from "effect"
import * as PieceWorker from "./PieceWorker.ts"

export interface Pool {
  /** A zeroed-or-reused buffer of `size` bytes, or undefined at the limit (never when `first`). */
  readonly take: (size: number, first: boolean) => Uint8Array | undefined
  /** A closed piece's buffer (from `take`): its bytes count no more, and it is reused if `reusable`. */
  readonly give: (buffer: Uint8Array, reusable: boolean) => void
}

export const make = (limitBytes: number): Pool => {
  let inUse = 0
  /** The most ever in use: over the limit by the first pieces the limit lets through. */
  let peak = 0
  /** Closed pieces' buffers, and their bytes. */
  const free: Array<Uint8Array> = []
  let freeBytes = 0
  const drop = (at: number) => {
    freeBytes -= free[at]!.length
    free.splice(at, 1)
  }
  return {
    take: (size, first) => {
      if (!first && inUse + size > limitBytes) return undefined
      inUse += size
      peak = Math.max(peak, inUse)
      const at = free.findIndex((buffer) => buffer.length >= size)
      if (at >= 0) {
        const buffer = free[at]!
        drop(at)
        return buffer.subarray(0, size)
      }
      // Room for a new one: the oldest kept buffers go (too small for this piece).
      while (free.length > 0 && inUse + freeBytes > Math.max(limitBytes, peak)) drop(0)
      // Shared memory: posted to the PieceWorker's thread (if it has one) without a copy.
      return PieceWorker.allocate(size)
    },
    give: (buffer, reusable) => {
      inUse -= buffer.length
      // Whole again (a smaller piece had a part of it).
      const whole = new Uint8Array(buffer.buffer, 0, buffer.buffer.byteLength)
      // Kept while all the buffers together are no more than were ever in use at once (or the limit).
      if (reusable && inUse + freeBytes + whole.length <= Math.max(limitBytes, peak)) {
        free.push(whole)
        freeBytes += whole.length
      }
    }
  }
}

export class PieceMemory extends Context.Service<PieceMemory, Pool>()("effect-torrent/torrent/PieceMemory") {
  /** One pool for the torrents it is provided to (a manager's). */
  static readonly layer = (limitBytes: number) => Layer.sync(PieceMemory, () => make(limitBytes))
}
