/**
 * A running torrent (a TorrentManager handle) as what the HTTP server
 * serves. Names, files and progress come from the handle; indexes are the
 * torrent's own, padding files are left out.
 *
 * Until the library streams a file's pieces as they are verified, a file's
 * bytes are read from the download folder once the whole file is verified
 * (a request for it waits until then); a file left out of `selected` is
 * never served.
 */
import { Effect, FileSystem, Path, Stream } from "effect"
import type * as Metainfo from "../protocol/Metainfo.ts"
import type { TorrentHandle } from "../TorrentManager.ts"
import { Served, ServedError, type ServedFile } from "./Served.ts"

export interface Options {
  /** The torrent's download folder. */
  readonly dir: string
  /** The files being downloaded, by index (default: all). */
  readonly selected?: ReadonlyArray<number> | undefined
}

export const make = Effect.fnUntraced(function*(handle: TorrentHandle, options: Options) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path

  const metadata = handle.metadata.pipe(
    Effect.mapError((error) => new ServedError({ reason: "Failed", detail: error.message }))
  )
  const files = Effect.map(
    metadata,
    (meta): ReadonlyArray<ServedFile> =>
      meta.files.flatMap((file, index) =>
        file.padding ? [] : [{ index, path: meta.multiFile ? file.path.slice(1) : file.path, length: file.length }]
      )
  )

  /** Waits until every byte of the file is verified; fails if the torrent fails first. */
  const verified = (index: number, file: Metainfo.FileEntry) =>
    Effect.raceFirst(
      handle.progress.changes.pipe(
        Stream.filter((p) => (p.files[index] ?? 0) >= file.length),
        Stream.take(1),
        Stream.runDrain
      ),
      handle.completed.pipe(
        Effect.mapError((error) => new ServedError({ index, reason: "Failed", detail: error.message })),
        Effect.andThen(Effect.never)
      )
    )

  const stream = (index: number, range: { readonly start: number; readonly end: number }) =>
    Stream.unwrap(Effect.gen(function*() {
      const meta = yield* Effect.mapError(
        metadata,
        (error) => new ServedError({ index, reason: error.reason, detail: error.detail })
      )
      const file = meta.files[index]
      if (file === undefined || file.padding) {
        return yield* new ServedError({ index, reason: "Failed", detail: "the torrent has no such file" })
      }
      if (options.selected !== undefined && !options.selected.includes(index)) {
        return yield* new ServedError({ index, reason: "Deselected", detail: "it is not selected for download" })
      }
      yield* verified(index, file)
      return fs.stream(path.join(options.dir, ...file.path), {
        offset: range.start,
        bytesToRead: range.end - range.start,
        chunkSize: 64 * 1024
      }).pipe(
        Stream.mapError((error) => new ServedError({ index, reason: "Unreadable", detail: error.message }))
      )
    }))

  return Served.of({
    id: handle.infoHash,
    name: handle.name,
    files,
    stream,
    progress: Effect.map(handle.progress.get, (p) => ({
      state: p.state,
      done: p.done,
      wanted: p.wanted,
      downloadRate: p.downloadRate,
      uploadRate: p.uploadRate,
      peers: p.peers,
      eta: Number.isFinite(p.eta) ? p.eta : null,
      files: p.files
    }))
  })
})
