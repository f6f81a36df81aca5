/**
 * What the HTTP server serves: one torrent's name, files, bytes and
 * progress. The server (`TorrentServer`) depends on nothing else, so tests
 * give it an in-memory torrent and the CLI a running one (`ServedTorrent`).
 *
 * Indexes are the torrent's own file indexes (as `info` lists them and
 * `--select` takes them); padding files (BEP 47) are never listed. A file's
 * bytes never change (pieces are verified against the info-hash), which is
 * what makes `ETag`s from the info-hash and the index strong.
 */
import { Context, type Effect, Schema, type Stream } from "effect"

export class ServedError extends Schema.TaggedError<ServedError>()("ServedError", {
  /** The file, by the torrent's index (none when the files themselves cannot be known). */
  index: Schema.optionalKey(Schema.Number),
  /**
   * "Failed": the torrent failed, stopped or was removed; "Deselected": the
   * file is not being downloaded; "Unreadable": its data could not be read.
   */
  reason: Schema.Literals(["Failed", "Deselected", "Unreadable"]),
  detail: Schema.String
}) {
  override get message() {
    return `${this.index === undefined ? "the torrent" : `file ${this.index}`} cannot be served: ${this.detail}`
  }
}

/** A file of the torrent. */
export interface ServedFile {
  /** The torrent's index of the file. */
  readonly index: number
  /** Its path components, as in the metadata (for a multi-file torrent, below the torrent's folder). */
  readonly path: ReadonlyArray<string>
  readonly length: number
}

/** The torrent's progress, as plain JSON (`eta` is null while nothing comes). */
export const Progress = Schema.Struct({
  state: Schema.String,
  /** Verified bytes of the selected files, of `wanted`. */
  done: Schema.Number,
  wanted: Schema.Number,
  downloadRate: Schema.Number,
  uploadRate: Schema.Number,
  peers: Schema.Number,
  /** Seconds to completion at the current rate. */
  eta: Schema.NullOr(Schema.Number),
  /** Verified bytes of each file, by the torrent's index. */
  files: Schema.Array(Schema.Number)
})
export type Progress = typeof Progress.Type

/** Bytes `start` (included) to `end` (excluded) of a file: 0 ≤ start < end ≤ its length. */
export interface Range {
  readonly start: number
  readonly end: number
}

export class Served extends Context.Service<Served, {
  /** Identifies the bytes: the same id, the same bytes (the info-hash). */
  readonly id: string
  /** The torrent's name (from whoever made it: any characters). */
  readonly name: Effect.Effect<string>
  /** The files (a magnet link's once its metadata is known; waits until then). */
  readonly files: Effect.Effect<ReadonlyArray<ServedFile>, ServedError>
  /**
   * The file's bytes in `range`, in order: verified data at once, waiting for
   * what is missing. Interrupting the stream (the client went away) releases
   * whatever it holds.
   */
  readonly stream: (index: number, range: Range) => Stream.Stream<Uint8Array, ServedError>
  readonly progress: Effect.Effect<Progress>
}>()("effect-torrent/http/Served") {}
