/**
 * Resume: which pieces are already on disk when a torrent starts.
 *
 * A small fast-resume record (`<download dir>/.effect-torrent/<info-hash>.resume`)
 * is saved atomically while downloading and on stop. It is trusted only as
 * far as it can be checked, and anything that does not check out falls back
 * to hashing the data:
 * - the file holds the record and its SHA-1: a record with flipped bytes is
 *   ignored, not read;
 * - the record names the info-hash (a v2 torrent's whole SHA-256), piece length and piece count it
 *   describes, and each file's size and mtime: another torrent's record, or
 *   files changed since the save, are ignored;
 * - a recorded piece is trusted only if every file it lies in exists and
 *   holds its bytes (a record does not make a piece of a missing file ours).
 * No torrent's files can be written into `.effect-torrent` (see
 * `stateCollision`), so torrent content cannot plant a record. A crash
 * between saves costs some hashing, never a verified piece.
 */
import { Effect, FileSystem, Option, Path, Result } from "effect"
import * as NodeCrypto from "node:crypto"
import * as Bencode from "../protocol/Bencode.ts"
import * as Bitfield from "../protocol/Bitfield.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import { DiskWriter, segments } from "./DiskWriter.ts"
import * as PieceCheck from "./PieceCheck.ts"
import * as PieceWorker from "./PieceWorker.ts"
import type * as Synchronizer from "./Synchronizer.ts"
import { warning } from "./TorrentEvents.ts"

/** The folder of the client's own state inside a download folder. */
export const stateFolder = ".effect-torrent"

const version = 2

/** Size and mtime (ms) of a file, or -1s where it does not exist. */
type Stamp = readonly [size: number, mtime: number]

export interface Record {
  readonly infoHash: string
  readonly pieceLength: number
  readonly pieceCount: number
  readonly files: ReadonlyArray<Stamp>
  readonly pieces: Bitfield.Bitfield
}

const fileOf = (path: Path.Path, downloadDir: string, meta: Metainfo.Metainfo) =>
  path.join(downloadDir, stateFolder, `${meta.infoHash}.resume`)

/**
 * The torrent path that would land in the client's state folder, if any:
 * every path starts with the torrent's name, compared as a case-insensitive
 * file system (and Windows, which drops trailing dots and spaces) would.
 */
export const stateCollision = (meta: Metainfo.Metainfo): string | undefined => {
  const first = meta.name.normalize("NFC").toLowerCase().replace(/[. ]+$/, "")
  return first === stateFolder ? meta.name : undefined
}

const sha1 = (bytes: Uint8Array) => NodeCrypto.createHash("sha1").update(bytes).digest()

/** The file's bytes: the bencoded record and its SHA-1. */
export const encode = (record: Record): Uint8Array => {
  const body = Bencode.encode({
    version,
    infoHash: record.infoHash,
    pieceLength: record.pieceLength,
    pieceCount: record.pieceCount,
    files: record.files,
    pieces: record.pieces.toBytes()
  })
  return Bencode.encode({ record: body, sha1: sha1(body) })
}

/** The record a file holds, or undefined if it is damaged or not one. */
export const decode = (bytes: Uint8Array): Record | undefined => {
  const outer = Bencode.decode(bytes)
  if (Result.isFailure(outer)) return undefined
  const { record: body, sha1: sum } = outer.success as { readonly record?: unknown; readonly sha1?: unknown }
  if (!(body instanceof Uint8Array) || !(sum instanceof Uint8Array) || Buffer.compare(sha1(body), sum) !== 0) {
    return undefined
  }
  const inner = Bencode.decode(body)
  if (Result.isFailure(inner)) return undefined
  const r = inner.success as { readonly [key: string]: unknown }
  if (
    r.version !== version || !(r.infoHash instanceof Uint8Array) || typeof r.pieceLength !== "number" ||
    typeof r.pieceCount !== "number" || !(r.pieces instanceof Uint8Array) || !isStamps(r.files)
  ) return undefined
  const pieces = Bitfield.fromBytes(r.pieces, r.pieceCount)
  if (Result.isFailure(pieces)) return undefined
  return {
    infoHash: Bencode.text(r.infoHash),
    pieceLength: r.pieceLength,
    pieceCount: r.pieceCount,
    files: r.files,
    pieces: pieces.success
  }
}

const isStamps = (value: unknown): value is ReadonlyArray<Stamp> =>
  Array.isArray(value) &&
  value.every((s) => Array.isArray(s) && s.length === 2 && typeof s[0] === "number" && typeof s[1] === "number")

const fileStamps = Effect.fnUntraced(function*(meta: Metainfo.Metainfo, downloadDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  return yield* Effect.forEach(meta.files, (file) =>
    fs.stat(path.join(downloadDir, ...file.path)).pipe(
      Effect.map((info): Stamp => [
        Number(info.size),
        Option.match(info.mtime, { onNone: () => 0, onSome: (d) => d.getTime() })
      ]),
      Effect.orElseSucceed((): Stamp => [-1, -1])
    ))
})

/** Writes the resume file (to a temporary name, then renamed: never half-written). */
export const save = Effect.fnUntraced(function*(sync: Synchronizer.State, downloadDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const meta = sync.meta
  const target = fileOf(path, downloadDir, meta)
  const pieces = sync.bitfield()
  const files = yield* fileStamps(meta, downloadDir)
  const bytes = encode({
    infoHash: boundHash(meta),
    pieceLength: meta.pieceLength,
    pieceCount: meta.pieceCount,
    files,
    pieces
  })
  yield* fs.makeDirectory(path.dirname(target), { recursive: true })
  yield* fs.writeFile(`${target}.tmp`, bytes)
  yield* fs.rename(`${target}.tmp`, target)
}, Effect.catch((error) => warning(`could not save resume data: ${error.message}`)))

/** The hash a record names: a v2 torrent's whole SHA-256, not the 20 bytes that stand for it on the wire. */
const boundHash = (meta: Metainfo.Metainfo): string => meta.infoHashV2 ?? meta.infoHash

/** Whether every recorded stamp matches and each file holds the bytes of `index` (sparse holes aside). */
const onDisk = (meta: Metainfo.Metainfo, stamps: ReadonlyArray<Stamp>, index: number) =>
  segments(meta, index).every((s) => meta.files[s.file]!.padding || stamps[s.file]![0] >= s.position + s.length)

/** Pieces recorded by the resume file, where it still describes the files on disk. */
const trusted = Effect.fnUntraced(function*(meta: Metainfo.Metainfo, downloadDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const bytes = yield* fs.readFile(fileOf(path, downloadDir, meta)).pipe(Effect.option)
  if (Option.isNone(bytes)) return undefined
  const record = decode(bytes.value)
  if (record === undefined) {
    yield* warning("the resume data is damaged: checking every piece")
    return undefined
  }
  if (
    record.infoHash !== boundHash(meta) || record.pieceLength !== meta.pieceLength ||
    record.pieceCount !== meta.pieceCount
  ) {
    yield* warning("the resume data is for another torrent: checking every piece")
    return undefined
  }
  const stamps = yield* fileStamps(meta, downloadDir)
  const same = stamps.length === record.files.length &&
    stamps.every((s, i) => s[0] === record.files[i]![0] && s[1] === record.files[i]![1])
  if (!same) return undefined
  return (index: number) => record.pieces.has(index) && onDisk(meta, stamps, index)
})

/** What `check` found: pieces on disk, and how many of them it had to hash. */
export interface Found {
  readonly pieces: number
  readonly hashed: number
}

/**
 * Marks the pieces already on disk: those of a valid resume record, and
 * those whose data hashes right.
 */
export const check = Effect.fnUntraced(function*(sync: Synchronizer.State, downloadDir: string) {
  const disk = yield* DiskWriter
  const meta = sync.meta
  const check = yield* PieceCheck.make(() => meta)
  const known = yield* trusted(meta, downloadDir)
  const buffer = PieceWorker.allocate(meta.pieceLength)
  let hashed = 0
  for (let i = 0; i < meta.pieceCount; i++) {
    if (known?.(i) === true) {
      sync.markHave(i)
      continue
    }
    const piece = buffer.subarray(0, Metainfo.pieceSize(meta, i))
    if (!(yield* disk.read(i, piece))) continue
    hashed++
    if (yield* check(i, piece)) sync.markHave(i)
  }
  return { pieces: sync.haveCount, hashed } satisfies Found
})
