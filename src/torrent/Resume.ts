/**
 * Resume: which pieces are already on disk when a torrent starts.
 *
 * A small fast-resume file (`<download dir>/.effect-torrent/<info-hash>.resume`,
 * bencoded: verified-piece bitfield plus each file's size and mtime) is
 * saved atomically while downloading and on stop. On start its pieces are
 * trusted only if every file still has the recorded size and mtime; every
 * other piece whose data exists is hashed. A crash between saves therefore
 * costs some hashing, never a verified piece.
 */
import { Effect, FileSystem, Option, Path, Result } from "effect"
import { Digest } from "effect/crypto"
import * as Bencode from "../protocol/Bencode.ts"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as PieceWorker from "./PieceWorker.ts"
import { DiskWriter } from "./DiskWriter.ts"
import type * as Synchronizer from "./Synchronizer.ts"

const fileOf = (path: Path.Path, downloadDir: string, meta: Metainfo.Metainfo) =>
  path.join(downloadDir, ".effect-torrent", `${meta.infoHash}.resume`)

/** Size and mtime of each file, or -1s where it does not exist. */
const fileStamps = Effect.fnUntraced(function*(meta: Metainfo.Metainfo, downloadDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  return yield* Effect.forEach(meta.files, (file) =>
    fs.stat(path.join(downloadDir, ...file.path)).pipe(
      Effect.map((info) => [Number(info.size), Option.match(info.mtime, { onNone: () => 0, onSome: (d) => d.getTime() })]),
      Effect.orElseSucceed(() => [-1, -1])
    ))
})

/** Writes the resume file (to a temporary name, then renamed: never half-written). */
export const save = Effect.fnUntraced(function*(sync: Synchronizer.State, downloadDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const meta = sync.meta
  const target = fileOf(path, downloadDir, meta)
  const bits = Bitfield.make(meta.pieceCount)
  for (let i = 0; i < meta.pieceCount; i++) if (sync.have[i] === 1) bits.set(i)
  const stamps = yield* fileStamps(meta, downloadDir)
  const bytes = Bencode.encode({ pieces: bits.toBytes(), files: stamps })
  yield* fs.makeDirectory(path.dirname(target), { recursive: true })
  yield* fs.writeFile(`${target}.tmp`, bytes)
  yield* fs.rename(`${target}.tmp`, target)
}, Effect.catch((error) => Effect.logWarning(`could not save resume data: ${error.message}`)))

/** Pieces recorded by the resume file, if it is still valid for the files on disk. */
const trusted = Effect.fnUntraced(function*(meta: Metainfo.Metainfo, downloadDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const bytes = yield* fs.readFile(fileOf(path, downloadDir, meta)).pipe(Effect.option)
  if (bytes._tag === "None") return undefined
  const decoded = Bencode.decode(bytes.value)
  if (Result.isFailure(decoded)) return undefined
  const value = decoded.success as { readonly pieces?: unknown; readonly files?: unknown }
  if (!(value.pieces instanceof Uint8Array) || !Array.isArray(value.files)) return undefined
  const stamps = yield* fileStamps(meta, downloadDir)
  if (JSON.stringify(stamps) !== JSON.stringify(value.files)) return undefined
  return Result.getOrUndefined(Bitfield.fromBytes(value.pieces, meta.pieceCount))
})

/**
 * Marks the pieces already on disk: those of a valid resume file, and those
 * whose data hashes right. Returns how many pieces were found.
 */
export const check = Effect.fnUntraced(function*(sync: Synchronizer.State, downloadDir: string) {
  const disk = yield* DiskWriter
  const digest = yield* Digest.Digest
  const meta = sync.meta
  const known = yield* trusted(meta, downloadDir)
  const buffer = PieceWorker.allocate(meta.pieceLength)
  for (let i = 0; i < meta.pieceCount; i++) {
    if (known?.has(i) === true) {
      sync.markHave(i)
      continue
    }
    const piece = buffer.subarray(0, Metainfo.pieceSize(meta, i))
    if (!(yield* disk.read(i, piece))) continue
    const hash = yield* digest.digest(Digest.sha1, piece)
    if (Buffer.compare(hash, Metainfo.pieceHash(meta, i)) === 0) sync.markHave(i)
  }
  return sync.haveCount
})
