/**
 * FileStream: a file of a running torrent as a Stream of its bytes, while
 * the torrent downloads. Verified data comes at once; for the rest the
 * stream waits, in order, and while it waits the Orchestrator fetches the
 * pieces from its position on first (a read-ahead window sized from the
 * download rate). Ending the stream, or interrupting it (a player closing
 * its HTTP response), withdraws that priority.
 */
import { Effect, Schema, Stream } from "effect"
import * as Metainfo from "../protocol/Metainfo.ts"
import type { DiskWriter } from "./DiskWriter.ts"
import type { Orchestrator } from "./Orchestrator.ts"

export const FileStreamProblem = Schema.Literals([
  /** The torrent has no file of that index. */
  "NoSuchFile",
  /** The range is not within the file. */
  "Range",
  /** The file was deselected (or never selected) and its data is not all there. */
  "Deselected",
  /** The torrent stopped (paused, removed, failed) before the data came. */
  "Stopped",
  /** The data could not be read from the disk. */
  "Io"
])
export type FileStreamProblem = typeof FileStreamProblem.Type

export class FileStreamError extends Schema.TaggedError<FileStreamError>()("FileStreamError", {
  file: Schema.Number,
  problem: FileStreamProblem,
  detail: Schema.String
}) {
  override get message() {
    return `file ${this.file}: ${this.detail}`
  }
}

/** Bytes `start` (included) to `end` (excluded) of a file; by default all of it. */
export interface Range {
  readonly start?: number | undefined
  readonly end?: number | undefined
}

/** Distinguishes one reader's priority from another's. */
let nextReader = 0

/** The bytes of `file` in `range`, as they are verified; one chunk per piece (a view of the piece read). */
export const stream = (
  meta: Metainfo.Metainfo,
  services: { readonly orchestrator: Orchestrator["Service"]; readonly disk: DiskWriter["Service"] },
  file: number,
  range: Range = {}
): Stream.Stream<Uint8Array, FileStreamError> => {
  const fail = (problem: FileStreamProblem, detail: string) => new FileStreamError({ file, problem, detail })
  const entry = meta.files[file]
  if (entry === undefined || !Number.isInteger(file)) {
    return Stream.fail(fail("NoSuchFile", `no such file: the torrent has ${meta.files.length}`))
  }
  const start = range.start ?? 0
  const end = range.end ?? entry.length
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > entry.length) {
    return Stream.fail(fail("Range", `bytes ${start} to ${end} are not within its ${entry.length}`))
  }
  if (start === end) return Stream.empty
  const { disk, orchestrator } = services
  const from = entry.offset + start
  const to = entry.offset + end
  const first = Math.floor(from / meta.pieceLength)
  const last = Math.floor((to - 1) / meta.pieceLength)
  const id = nextReader++
  const piece = (index: number) =>
    Effect.gen(function*() {
      yield* orchestrator.reading(id, index, last)
      yield* orchestrator.awaitPiece(index).pipe(
        Effect.mapError((problem) =>
          fail(problem, problem === "Stopped" ? "the torrent stopped" : "it is not selected for download")
        )
      )
      const at = index * meta.pieceLength
      const size = Metainfo.pieceSize(meta, index)
      const begin = Math.max(from, at) - at
      const length = Math.min(to, at + size) - at - begin
      // A buffer of its own, not the upload cache's (readBlock): it dies young,
      // once written out. Cached ones live on into the old generation, and
      // their bytes (external to the heap) forced a full collection every few
      // dozen MiB streamed.
      const piece = Buffer.allocUnsafeSlow(size)
      const read = yield* disk.read(index, piece).pipe(Effect.mapError((error) => fail("Io", error.message)))
      if (!read) return yield* fail("Io", `piece ${index} is missing on disk`)
      return piece.subarray(begin, begin + length)
    })
  return Stream.range(first, last).pipe(
    Stream.mapEffect(piece),
    Stream.ensuring(orchestrator.doneReading(id))
  )
}
