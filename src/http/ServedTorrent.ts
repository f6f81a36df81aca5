/**
 * A running torrent (a TorrentManager handle) as what the HTTP server
 * serves. Names, files and progress come from the handle; indexes are the
 * torrent's own, padding files are left out. A file's bytes come from
 * `handle.file(index).stream`: verified data at once, the rest as it is
 * verified, fetched first while the response is being sent (a client that
 * goes away interrupts the stream, which withdraws that priority).
 */
import { Effect, Stream } from "effect"
import type { FileStreamError } from "../torrent/FileStream.ts"
import type { TorrentHandle } from "../TorrentManager.ts"
import { Served, ServedError, type ServedFile } from "./Served.ts"

export const make = (handle: TorrentHandle): Served["Service"] =>
  Served.of({
    id: handle.infoHash,
    name: handle.name,
    files: handle.metadata.pipe(
      Effect.map((meta): ReadonlyArray<ServedFile> =>
        meta.files.flatMap((file, index) =>
          file.padding ? [] : [{ index, path: meta.multiFile ? file.path.slice(1) : file.path, length: file.length }]
        )
      ),
      Effect.mapError((error) => new ServedError({ reason: "Failed", detail: error.message }))
    ),
    stream: (index, range) => handle.file(index).stream(range).pipe(Stream.mapError(servedError)),
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

const servedError = (error: FileStreamError): ServedError =>
  new ServedError({
    index: error.file,
    reason: error.problem === "Deselected" ? "Deselected" : error.problem === "Io" ? "Unreadable" : "Failed",
    detail: error.detail
  })
