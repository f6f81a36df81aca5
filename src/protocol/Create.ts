/**
 * Making a metainfo (BEP 3, BEP 12 tiers, BEP 19 web seeds, BEP 27 private;
 * BEP 52 v2-only and hybrid, with BEP 47 padding in the hybrid's v1 part):
 * the pure parts of making a torrent. Reading the files is
 * `CreateTorrent.create`'s job (src/torrent/CreateTorrent.ts, which the CLI's
 * `create` uses); here are the piece-length rule, the file order, an
 * incremental piece hasher and the encoder, which decodes its own output with
 * `Metainfo.decode` so we never hand out a torrent we would refuse ourselves.
 */
import { createHash, type Hash } from "node:crypto"
import { Result, Schema } from "effect"
import * as Bencode from "./Bencode.ts"
import * as Merkle from "./Merkle.ts"
import * as Metainfo from "./Metainfo.ts"

export const CreateProblem = Schema.Literals([
  "PieceLength",
  "Url",
  "Missing",
  "NotRegular",
  "NoData",
  "Unreadable",
  "Changed",
  "OutputExists",
  "Write",
  "SelfCheck"
])
export type CreateProblem = typeof CreateProblem.Type

export class CreateError extends Schema.TaggedError<CreateError>()("CreateError", {
  problem: CreateProblem,
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

const fail = (problem: CreateProblem, detail: string) => Result.fail(new CreateError({ problem, detail }))

export const createdBy = "effect-torrent/0.1.0"

/** Smallest piece length we make: one block (16 KiB), as every client expects. */
export const minPieceLength = 16 * 1024
/** Largest piece length chosen automatically (the upper end of libtorrent's and mktorrent's rules). */
export const maxAutoPieceLength = 16 * 1024 * 1024
/** The automatic rule doubles the piece length from 16 KiB until there are at most this many pieces. */
export const maxAutoPieces = 2000

/**
 * The automatic piece length: the smallest power of two from 16 KiB to 16 MiB
 * that gives at most 2000 pieces, so a large torrent gets 1000–2000 pieces
 * (and a .torrent of 20–40 KB), a small one 16 KiB pieces, and one above
 * 32 GiB more pieces of 16 MiB.
 */
export const autoPieceLength = (totalLength: number): number => {
  let pieceLength = minPieceLength
  while (pieceLength < maxAutoPieceLength && Math.ceil(totalLength / pieceLength) > maxAutoPieces) pieceLength *= 2
  return pieceLength
}

/** Whether `pieceLength` is one we make: a power of two from 16 KiB up to the largest we accept when reading (64 MiB). */
export const isPieceLength = (pieceLength: number): boolean =>
  Number.isInteger(pieceLength) && pieceLength >= minPieceLength && pieceLength <= Metainfo.maxPieceLength &&
  Number.isInteger(Math.log2(pieceLength))

const pieceLengthRule = `a power of two from 16 KiB (16384) to 64 MiB (${Metainfo.maxPieceLength})`

/** A piece length given as a number (the library's option): see `isPieceLength`. */
export const checkPieceLength = (pieceLength: number): Result.Result<number, CreateError> =>
  isPieceLength(pieceLength)
    ? Result.succeed(pieceLength)
    : fail("PieceLength", `piece length ${pieceLength} is not ${pieceLengthRule}`)

/**
 * A piece length given by the user: bytes, or with a K/KiB or M/MiB suffix
 * (binary), a power of two from 16 KiB up to the largest we accept when
 * reading (64 MiB).
 */
export const parsePieceLength = (text: string): Result.Result<number, CreateError> => {
  const match = /^(\d{1,12})\s*(k|kib|m|mib)?$/i.exec(text.trim())
  if (match === null) return fail("PieceLength", `--piece-length ${JSON.stringify(text)} is not a number of bytes`)
  const unit = match[2] === undefined ? 1 : match[2].toLowerCase().startsWith("k") ? 1024 : 1024 * 1024
  const pieceLength = Number(match[1]) * unit
  if (!isPieceLength(pieceLength)) return fail("PieceLength", `--piece-length ${text.trim()} is not ${pieceLengthRule}`)
  return Result.succeed(pieceLength)
}

const trackerUrl = /^(https?|udp|wss?):\/\/[^/\s]/i
const webSeedUrl = /^https?:\/\/[^/\s]/i

/** How `checkUrls` names a bad URL's kind in its message: the CLI's flags by default. */
export interface UrlLabels {
  readonly tracker: string
  readonly webSeed: string
}

/** Tracker URLs as other clients accept them (the same rule as magnet links' `tr`), and http(s) web seeds. */
export const checkUrls = (
  trackers: ReadonlyArray<string>,
  webSeeds: ReadonlyArray<string>,
  labels: UrlLabels = { tracker: "--tracker", webSeed: "--web-seed" }
): Result.Result<void, CreateError> => {
  const tracker = trackers.find((url) => !trackerUrl.test(url))
  if (tracker !== undefined) {
    return fail("Url", `${labels.tracker} ${JSON.stringify(tracker)} is not an http, https, udp, ws or wss URL`)
  }
  const webSeed = webSeeds.find((url) => !webSeedUrl.test(url))
  if (webSeed !== undefined) {
    return fail("Url", `${labels.webSeed} ${JSON.stringify(webSeed)} is not an http or https URL`)
  }
  return Result.succeed(undefined)
}

/** A file of the torrent: its path components below the torrent's folder (none for a single-file torrent). */
export interface SourceFile {
  readonly path: ReadonlyArray<string>
  readonly length: number
}

const utf8 = new TextEncoder()

/** Path order of a torrent's files: component by component, each compared as UTF-8 bytes (a folder's files sort as a group). */
export const comparePaths = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue
    return Buffer.compare(utf8.encode(a[i]!), utf8.encode(b[i]!))
  }
  return a.length - b.length
}

/** Sorts files into torrent order (a copy). */
export const sortFiles = <F extends SourceFile>(files: ReadonlyArray<F>): Array<F> =>
  [...files].sort((a, b) => comparePaths(a.path, b.path))

/**
 * The digest of each `unit`-byte run of a stream of `total` bytes (the last
 * run may be short), fed in chunks of any size that may straddle runs. Holds
 * one hash state, never the data: `update` hashes a view without copying it.
 */
class RunHasher {
  private hash: Hash
  private inRun = 0
  fed = 0

  constructor(
    readonly algorithm: string,
    readonly unit: number,
    readonly total: number,
    readonly onDigest: (digest: Buffer) => void
  ) {
    this.hash = createHash(algorithm)
  }

  update(chunk: Uint8Array): void {
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(chunk.length - at, this.unit - this.inRun)
      this.hash.update(chunk.subarray(at, at + take))
      at += take
      this.inRun += take
      this.fed += take
      if (this.inRun === this.unit || this.fed === this.total) {
        this.onDigest(this.hash.digest())
        this.hash = createHash(this.algorithm)
        this.inRun = 0
      }
    }
  }
}

/**
 * SHA-1 of each piece of the concatenated file data, fed in chunks of any
 * size that may straddle pieces (and files). Holds one hash state and the
 * 20-byte digests, never the data.
 */
export class PieceHasher {
  readonly pieces: Uint8Array
  private readonly runs: RunHasher

  constructor(readonly pieceLength: number, readonly totalLength: number) {
    const pieces = new Uint8Array(20 * Math.ceil(totalLength / pieceLength))
    let piece = 0
    this.pieces = pieces
    this.runs = new RunHasher("sha1", pieceLength, totalLength, (digest) => pieces.set(digest, 20 * piece++))
  }

  get bytesHashed(): number {
    return this.runs.fed
  }

  update(chunk: Uint8Array): void {
    if (this.runs.fed + chunk.length > this.totalLength) {
      throw new RangeError("PieceHasher: more data than the total length")
    }
    this.runs.update(chunk)
  }

  /** The concatenated piece hashes, once every byte has been fed. */
  finish(): Uint8Array {
    if (this.runs.fed !== this.totalLength) {
      throw new RangeError(`PieceHasher: ${this.runs.fed} of ${this.totalLength} bytes were fed`)
    }
    return this.pieces
  }
}

/** Which hashes a torrent carries: v1's SHA-1 pieces, v2's Merkle trees (BEP 52), or both. */
export type Version = "v1" | "v2" | "hybrid"

/** A file's v2 hashes: none for an empty file, no piece layer for a file of one piece. */
export interface FileHashes {
  readonly piecesRoot?: Uint8Array | undefined
  readonly pieceLayer?: Uint8Array | undefined
}

/**
 * BEP 52: each file's pieces root and piece layer, fed the files' bytes in
 * order (`startFile` before each) in chunks of any size within the file.
 * Holds one hash state and the current file's block hashes.
 */
export class FileTreeHasher {
  readonly files: Array<FileHashes> = []
  private blocks: Array<Uint8Array> = []
  private runs: RunHasher | undefined

  constructor(readonly pieceLength: number) {}

  startFile(length: number): void {
    if (this.runs !== undefined && this.runs.fed !== this.runs.total) {
      throw new RangeError("FileTreeHasher: the previous file is not complete")
    }
    const blocks: Array<Uint8Array> = []
    this.blocks = blocks
    this.runs = new RunHasher("sha256", Merkle.blockSize, length, (digest) => blocks.push(digest))
    if (length === 0) this.files.push({})
  }

  update(chunk: Uint8Array): void {
    const runs = this.runs
    if (runs === undefined || runs.fed + chunk.length > runs.total) {
      throw new RangeError("FileTreeHasher: more data than the file's length")
    }
    runs.update(chunk)
    if (runs.fed === runs.total && chunk.length > 0) this.endFile()
  }

  private endFile() {
    const leaves = Buffer.concat(this.blocks)
    const count = this.blocks.length
    const piecesRoot = Merkle.rootOf(leaves, 0, count)
    const layer = Merkle.pieceLayer(this.pieceLength)
    this.files.push(
      count * Merkle.blockSize > this.pieceLength
        ? { piecesRoot, pieceLayer: Merkle.layerAbove(leaves, 0, layer) }
        : { piecesRoot }
    )
  }
}

/** The zeros a hybrid torrent pads `length` bytes of a file with, to the next piece boundary. */
export const padding = (length: number, pieceLength: number): number =>
  (pieceLength - (length % pieceLength)) % pieceLength

export interface Options {
  readonly name: string
  /** False for a single file: then `files` holds that one file, with an empty path. */
  readonly multiFile: boolean
  /** In torrent order (see `sortFiles`). */
  readonly files: ReadonlyArray<SourceFile>
  readonly pieceLength: number
  /** v1 and hybrid: the SHA-1 piece hashes (for a hybrid, over the files padded to piece boundaries but the last). */
  readonly pieces: Uint8Array
  /** v2 and hybrid: each file's hashes, in the order of `files`. */
  readonly v2?: ReadonlyArray<FileHashes> | undefined
  /** One tier each, in order: the first is `announce`; `announce-list` when there are several. */
  readonly trackers: ReadonlyArray<string>
  readonly webSeeds: ReadonlyArray<string>
  readonly private: boolean
  readonly comment?: string | undefined
  readonly createdBy: string
  /** Seconds since the epoch. */
  readonly creationDate: number
}

export interface Created {
  /** The .torrent file's bytes. */
  readonly bytes: Uint8Array
  /** The same bytes read back by `Metainfo.decode`. */
  readonly meta: Metainfo.Metainfo
}

/** Encodes a metainfo and reads it back; fails rather than return a torrent `Metainfo.decode` refuses or reads differently. */
export const encode = (options: Options): Result.Result<Created, CreateError> => {
  const totalLength = options.files.reduce((n, file) => n + file.length, 0)
  const v1 = options.pieces.length > 0
  const hybrid = v1 && options.v2 !== undefined
  const info: Array<readonly [string, Uint8Array]> = [
    ["name", Bencode.encode(options.name)],
    ["piece length", Bencode.encode(options.pieceLength)]
  ]
  if (v1) {
    info.push(["pieces", Bencode.encode(options.pieces)])
    if (!options.multiFile) info.push(["length", Bencode.encode(totalLength)])
    else {
      // A hybrid's files start on piece boundaries, as in its v2 part: padding files (BEP 47) between them.
      const files = options.files.flatMap((file, i) => {
        const pad = hybrid && i < options.files.length - 1 ? padding(file.length, options.pieceLength) : 0
        const entry = { length: file.length, path: file.path }
        return pad === 0 ? [entry] : [entry, { attr: "p", length: pad, path: [".pad", String(pad)] }]
      })
      info.push(["files", Bencode.encode(files)])
    }
  }
  if (options.v2 !== undefined) {
    info.push(["meta version", Bencode.encode(2)])
    info.push(["file tree", fileTree(options)])
  }
  if (options.private) info.push(["private", Bencode.encode(1)])

  const root: Array<readonly [string | Uint8Array, Uint8Array]> = [
    ["info", Bencode.encodeDict(info)],
    ["created by", Bencode.encode(options.createdBy)],
    ["creation date", Bencode.encode(options.creationDate)]
  ]
  if (options.trackers.length > 0) root.push(["announce", Bencode.encode(options.trackers[0])])
  if (options.trackers.length > 1) root.push(["announce-list", Bencode.encode(options.trackers.map((url) => [url]))])
  if (options.webSeeds.length > 0) root.push(["url-list", Bencode.encode(options.webSeeds)])
  if (options.comment !== undefined && options.comment !== "") root.push(["comment", Bencode.encode(options.comment)])
  const layers = (options.v2 ?? []).flatMap((file) =>
    file.piecesRoot !== undefined && file.pieceLayer !== undefined
      ? [[file.piecesRoot, Bencode.encode(file.pieceLayer)] as const]
      : []
  )
  if (layers.length > 0) root.push(["piece layers", Bencode.encodeDict(layers)])

  const bytes = Bencode.encodeDict(root)
  const decoded = Metainfo.decode(bytes)
  if (Result.isFailure(decoded)) {
    return fail("SelfCheck", `refusing to write a torrent we could not read back: ${decoded.failure.message}`)
  }
  const meta = decoded.success
  const pieceCount = Math.ceil(
    options.files.reduce(
      (n, file, i) =>
        n + file.length + (options.v2 !== undefined && i < options.files.length - 1
          ? padding(file.length, options.pieceLength)
          : 0),
      0
    ) / options.pieceLength
  )
  const files = meta.files.filter((file) => !file.padding)
  const length = files.reduce((n, file) => n + file.length, 0)
  if (length !== totalLength || meta.pieceCount !== pieceCount || files.length !== options.files.length) {
    return fail(
      "SelfCheck",
      `refusing to write a torrent that reads back differently: ${length} bytes in ${meta.pieceCount} pieces and ${files.length} files, not ${totalLength} bytes in ${pieceCount} pieces and ${options.files.length} files`
    )
  }
  return Result.succeed({ bytes, meta })
}

/** BEP 52's `file tree`: a dictionary per folder, a file's entry under the key "". */
const fileTree = (options: Options): Uint8Array => {
  interface Folder {
    readonly folders: Map<string, Folder>
    readonly files: Map<string, Uint8Array>
  }
  const top: Folder = { folders: new Map(), files: new Map() }
  options.files.forEach((file, i) => {
    const path = options.multiFile ? file.path : [options.name]
    let folder = top
    for (const component of path.slice(0, -1)) {
      const next = folder.folders.get(component) ?? { folders: new Map(), files: new Map() }
      folder.folders.set(component, next)
      folder = next
    }
    const hashes = options.v2![i]!
    const entry = Bencode.encodeDict([
      ["length", Bencode.encode(file.length)],
      ...(hashes.piecesRoot !== undefined ? [["pieces root", Bencode.encode(hashes.piecesRoot)] as const] : [])
    ])
    folder.files.set(path[path.length - 1]!, Bencode.encodeDict([["", entry]]))
  })
  const encodeFolder = (folder: Folder): Uint8Array =>
    Bencode.encodeDict([
      ...[...folder.folders].map(([name, inner]) => [name, encodeFolder(inner)] as const),
      ...folder.files
    ])
  return encodeFolder(top)
}
