/**
 * Metainfo (.torrent files): BEP 3 v1 single- and multi-file, BEP 12 tiers,
 * BEP 27 private, BEP 19 web seeds, BEP 47 padding files, BEP 52 v2 and
 * hybrid (v1 + v2) torrents.
 *
 * A v2 torrent's files each start on a piece boundary. It is laid out as a
 * hybrid one is: its files one after the other with a padding file after each
 * to fill its last piece, so pieces map to files (and to disk) as in v1. A v2 piece is checked against its file's piece layer (`Merkle`);
 * a hybrid piece against that and its SHA-1.
 *
 * Every file path is checked here, once, so nothing downstream can be led out
 * of the download folder.
 */
import { Result, Schema } from "effect"
import * as Bencode from "./Bencode.ts"
import * as InfoHash from "./InfoHash.ts"
import * as Merkle from "./Merkle.ts"

export const MetainfoProblem = Schema.Literals([
  "Bencode",
  "Malformed",
  "UnsafePath",
  "PathCollision",
  "PieceHashes",
  "PieceLayers",
  "Unsupported"
])
export type MetainfoProblem = typeof MetainfoProblem.Type

export class MetainfoError extends Schema.TaggedError<MetainfoError>()("MetainfoError", {
  problem: MetainfoProblem,
  detail: Schema.String
}) {
  override get message() {
    return `invalid torrent: ${this.detail}`
  }
}

/** Largest piece length we accept: a piece is held in memory while it downloads. */
export const maxPieceLength = 64 * 1024 * 1024

export const FileEntry = Schema.Struct({
  /** Relative path components, starting with the torrent's name for multi-file torrents. */
  path: Schema.Array(Schema.String),
  length: Schema.Int,
  /** Byte offset of the file in the torrent's concatenated data. */
  offset: Schema.Int,
  /** BEP 47 padding file: zeros that are never written to disk. */
  padding: Schema.Boolean,
  /** v2: the root of the file's Merkle tree (files of at least one byte). */
  piecesRoot: Schema.optionalKey(Schema.Uint8Array),
  /**
   * v2: the file's piece layer (32 bytes per piece), for files of more than
   * one piece, once known: from the torrent's `piece layers`, or from peers
   * for a magnet link. Checked against `piecesRoot`.
   */
  pieceLayer: Schema.optionalKey(Schema.Uint8Array)
})
export type FileEntry = typeof FileEntry.Type

export const Metainfo = Schema.Struct({
  /** The v1 info-hash; for a v2-only torrent its v2 info-hash truncated to 20 bytes. */
  infoHash: InfoHash.InfoHash,
  /** v2 and hybrid torrents: the SHA-256 of the info bytes. */
  infoHashV2: Schema.optionalKey(InfoHash.InfoHashV2),
  name: Schema.String,
  pieceLength: Schema.Int,
  pieceCount: Schema.Int,
  /** Concatenated 20-byte SHA-1 piece hashes (empty in a v2-only torrent). */
  pieces: Schema.Uint8Array,
  length: Schema.Int,
  files: Schema.Array(FileEntry),
  /** True for a multi-file torrent (its files live in a folder named `name`). */
  multiFile: Schema.Boolean,
  private: Schema.Boolean,
  announce: Schema.Array(Schema.Array(Schema.String)),
  urlList: Schema.Array(Schema.String),
  comment: Schema.optionalKey(Schema.String),
  createdBy: Schema.optionalKey(Schema.String),
  creationDate: Schema.optionalKey(Schema.Int),
  /** The original bencoded `info` dictionary (its SHA-1, or SHA-256 for v2, is the info-hash). */
  info: Schema.Uint8Array
})
export type Metainfo = typeof Metainfo.Type

const Length = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Bytes = Schema.Uint8Array

const RawFile = Schema.Struct({
  length: Length,
  path: Schema.Array(Bytes),
  "path.utf-8": Schema.optionalKey(Schema.Array(Bytes)),
  attr: Schema.optionalKey(Bytes)
})

const RawInfo = Schema.Struct({
  "piece length": Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxPieceLength })),
  pieces: Bytes,
  name: Bytes,
  "name.utf-8": Schema.optionalKey(Bytes),
  length: Schema.optionalKey(Length),
  files: Schema.optionalKey(Schema.Array(RawFile)),
  private: Schema.optionalKey(Schema.Int)
})

const decodeInfo = Schema.decodeUnknownResult(RawInfo)

const fail = (problem: MetainfoProblem, detail: string) => Result.fail(new MetainfoError({ problem, detail }))

/** Parses a .torrent file's bytes. */
export const decode = (bytes: Uint8Array): Result.Result<Metainfo, MetainfoError> => {
  const decoded = Bencode.decode(bytes)
  if (Result.isFailure(decoded)) return fail("Bencode", decoded.failure.message)
  const root = decoded.success
  if (!Bencode.isDict(root)) return fail("Malformed", "the file is not a bencoded dictionary")
  const info = root["info"]
  if (info === undefined) return fail("Malformed", "it has no info dictionary")
  if (!Bencode.isDict(info)) return fail("Malformed", "info is not a dictionary")
  return Result.flatMap(
    fromInfo(info),
    (meta) => withPieceLayers({ ...meta, ...torrentFields(root) }, root["piece layers"])
  )
}

/** Reads the bytes of an info dictionary (metadata fetched for a magnet link, at most `maxBytes`). */
export const fromInfoBytes = (bytes: Uint8Array, maxBytes: number): Result.Result<Metainfo, MetainfoError> => {
  const decoded = Bencode.decode(bytes, { ...Bencode.defaultLimits, maxBytes })
  if (Result.isFailure(decoded)) return fail("Bencode", decoded.failure.message)
  if (!Bencode.isDict(decoded.success)) return fail("Malformed", "info is not a dictionary")
  return fromInfo(decoded.success)
}

/**
 * Reads an info dictionary, e.g. one fetched from peers for a magnet link.
 * The info-hash is the SHA-1 of the dictionary's original bytes (for v2, its
 * SHA-256).
 */
export const fromInfo = (info: Bencode.BDict): Result.Result<Metainfo, MetainfoError> => {
  const infoBytes = Bencode.sourceBytes(info) ?? Bencode.encode(info)
  const version = info["meta version"]
  if (version !== undefined && version !== 2) {
    return fail("Unsupported", `meta version ${JSON.stringify(version)} is not one we know (2 is BitTorrent v2)`)
  }
  if (version === undefined) return fromV1(info, infoBytes)
  const v2 = fromV2(info)
  if (Result.isFailure(v2)) return Result.fail(v2.failure)
  const infoHashV2 = InfoHash.ofInfoV2(infoBytes)
  if (info["pieces"] === undefined) {
    const { files, length, name, pieceLength, private: isPrivate } = v2.success
    return Result.succeed({
      infoHash: InfoHash.truncate(infoHashV2),
      infoHashV2,
      name,
      pieceLength,
      pieceCount: Math.ceil(length / pieceLength),
      pieces: new Uint8Array(0),
      length,
      files,
      multiFile: isMultiFile(files),
      private: isPrivate,
      announce: [],
      urlList: [],
      info: new Uint8Array(infoBytes)
    })
  }
  // Hybrid: both parts must describe the same files at the same offsets (the
  // v1 part may pad its last file: libtorrent 2.0 does).
  return Result.flatMap(fromV1(info, infoBytes), (v1) => {
    const ours = v1.files.filter((file) => !file.padding && file.length > 0)
    const theirs = v2.success.files.filter((file) => !file.padding && file.length > 0)
    const same = v1.pieceCount === Math.ceil(v2.success.length / v2.success.pieceLength) &&
      v1.pieceLength === v2.success.pieceLength && ours.length === theirs.length &&
      ours.every((file, i) =>
        file.offset === theirs[i]!.offset && file.length === theirs[i]!.length &&
        file.path.join("/") === theirs[i]!.path.join("/")
      )
    if (!same) return fail("Malformed", "the v1 and v2 parts of this hybrid torrent describe different files")
    const roots = new Map(theirs.map((file) => [file.offset, file.piecesRoot]))
    return Result.succeed({
      ...v1,
      infoHashV2,
      files: v1.files.map((file) => {
        const piecesRoot = file.padding || file.length === 0 ? undefined : roots.get(file.offset)
        return piecesRoot === undefined ? file : { ...file, piecesRoot }
      })
    })
  })
}

const fromV1 = (info: Bencode.BDict, infoBytes: Uint8Array): Result.Result<Metainfo, MetainfoError> => {
  const raw = decodeInfo(info)
  if (Result.isFailure(raw)) return fail("Malformed", `info ${raw.failure.message.replace(/\n\s*/g, " ")}`)
  const r = raw.success
  const name = Bencode.text(r["name.utf-8"] ?? r.name)
  const nameError = unsafeComponent(name)
  if (nameError !== undefined) return fail("UnsafePath", `the torrent name ${JSON.stringify(name)} ${nameError}`)

  const files: Array<FileEntry> = []
  let offset = 0
  if (r.files !== undefined) {
    if (r.length !== undefined) return fail("Malformed", "info has both length and files")
    if (r.files.length === 0) return fail("Malformed", "info has an empty file list")
    for (const [index, file] of r.files.entries()) {
      const components = (file["path.utf-8"] ?? file.path).map(Bencode.text)
      const shown = JSON.stringify(components.join("/"))
      if (components.length === 0) return fail("UnsafePath", `file ${index} has an empty path`)
      for (const component of components) {
        const problem = unsafeComponent(component)
        if (problem !== undefined) return fail("UnsafePath", `file ${index} (${shown}) ${problem}`)
      }
      files.push({
        path: [name, ...components],
        length: file.length,
        offset,
        padding: file.attr !== undefined && Bencode.text(file.attr).includes("p")
      })
      offset += file.length
      if (!Number.isSafeInteger(offset)) return fail("Malformed", "the total length is too large")
    }
    const collision = findCollision(files)
    if (collision !== undefined) return fail("PathCollision", collision)
  } else {
    if (r.length === undefined) return fail("Malformed", "info has neither length nor files")
    files.push({ path: [name], length: r.length, offset: 0, padding: false })
    offset = r.length
  }

  const length = offset
  const pieceLength = r["piece length"]
  if (length === 0) return fail("Malformed", "the torrent holds no data (total length 0)")
  if (r.pieces.length % 20 !== 0) {
    return fail("PieceHashes", `the piece hashes are ${r.pieces.length} bytes, not a multiple of 20`)
  }
  const pieceCount = r.pieces.length / 20
  const expected = Math.ceil(length / pieceLength)
  if (pieceCount !== expected) {
    return fail(
      "PieceHashes",
      `${pieceCount} piece hashes for ${length} bytes in ${pieceLength}-byte pieces (expected ${expected})`
    )
  }
  return Result.succeed({
    infoHash: InfoHash.ofInfo(infoBytes),
    name,
    pieceLength,
    pieceCount,
    // Copies: on a Node Buffer, slice() is a view that would pin and alias the input.
    pieces: new Uint8Array(r.pieces),
    length,
    files,
    multiFile: r.files !== undefined,
    private: r.private === 1,
    announce: [],
    urlList: [],
    info: new Uint8Array(infoBytes)
  })
}

const RawInfoV2 = Schema.Struct({
  "piece length": Schema.Int.check(Schema.isBetween({ minimum: Merkle.blockSize, maximum: maxPieceLength })),
  name: Bytes,
  "file tree": Schema.Record(Schema.String, Schema.Unknown),
  private: Schema.optionalKey(Schema.Int)
})

const decodeInfoV2 = Schema.decodeUnknownResult(RawInfoV2)

/**
 * A v2 info dictionary's files (BEP 52's `file tree`), in the tree's order,
 * each starting on a piece boundary: a padding entry follows every file but
 * the last whose end is not on one.
 */
const fromV2 = (info: Bencode.BDict) => {
  const raw = decodeInfoV2(info)
  if (Result.isFailure(raw)) return fail("Malformed", `info ${raw.failure.message.replace(/\n\s*/g, " ")}`)
  const r = raw.success
  const pieceLength = r["piece length"]
  if (!Number.isInteger(Math.log2(pieceLength))) {
    return fail("Malformed", `the piece length ${pieceLength} is not a power of two, as v2 needs`)
  }
  const name = Bencode.text(r.name)
  const nameError = unsafeComponent(name)
  if (nameError !== undefined) return fail("UnsafePath", `the torrent name ${JSON.stringify(name)} ${nameError}`)
  const found: Array<{ readonly path: ReadonlyArray<string>; readonly node: Bencode.BDict }> = []
  const walk = (dir: Bencode.BDict, prefix: ReadonlyArray<string>): string | undefined => {
    // Sorted as bencode stores them (byte order): an object lists numeric keys first.
    const keys = Object.keys(dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    for (const key of keys) {
      const node = dir[key]!
      const path = [...prefix, key]
      if (!Bencode.isDict(node)) return `${JSON.stringify(path.join("/"))} is not a dictionary`
      const problem = unsafeComponent(key)
      if (problem !== undefined) return `${JSON.stringify(path.join("/"))} ${problem}`
      const file = node[""]
      if (file === undefined) {
        const inner = walk(node, path)
        if (inner !== undefined) return inner
      } else if (!Bencode.isDict(file) || Object.keys(node).length !== 1) {
        return `${JSON.stringify(path.join("/"))} is not a file entry`
      } else found.push({ path, node: file })
    }
    return undefined
  }
  const problem = walk(r["file tree"] as Bencode.BDict, [])
  if (problem !== undefined) return fail("UnsafePath", `the file tree's ${problem}`)
  if (found.length === 0) return fail("Malformed", "the file tree holds no files")
  const single = found.length === 1 && found[0]!.path.length === 1
  const files: Array<FileEntry> = []
  let offset = 0
  for (const { node, path } of found) {
    const shown = JSON.stringify(path.join("/"))
    const length = node["length"]
    if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 0) {
      return fail("Malformed", `file ${shown} has no valid length`)
    }
    const root = node["pieces root"]
    if (length > 0 && !(root instanceof Uint8Array && root.length === Merkle.hashSize)) {
      return fail("PieceLayers", `file ${shown} has no 32-byte pieces root`)
    }
    if (files.length > 0 && offset % pieceLength !== 0) {
      const size = pieceLength - (offset % pieceLength)
      files.push({ path: [name, ".pad", String(size)], length: size, offset, padding: true })
      offset += size
    }
    files.push({
      path: single ? [name] : [name, ...path],
      length,
      offset,
      padding: false,
      ...(length > 0 ? { piecesRoot: new Uint8Array(root as Uint8Array) } : {})
    })
    offset += length
    if (!Number.isSafeInteger(offset)) return fail("Malformed", "the total length is too large")
  }
  if (offset === 0) return fail("Malformed", "the torrent holds no data (total length 0)")
  // The last file is padded too, as libtorrent lays v2 torrents out: its
  // peers ask for whole blocks of the last piece.
  if (offset % pieceLength !== 0) {
    const size = pieceLength - (offset % pieceLength)
    files.push({ path: [name, ".pad", String(size)], length: size, offset, padding: true })
    offset += size
  }
  const collision = findCollision(files)
  if (collision !== undefined) return fail("PathCollision", collision)
  return Result.succeed({ files, length: offset, name, pieceLength, private: r.private === 1 })
}

const isMultiFile = (files: ReadonlyArray<FileEntry>) => {
  const data = files.filter((file) => !file.padding)
  return data.length > 1 || data[0]!.path.length > 1
}

/**
 * Attaches a v2 torrent's `piece layers` to its files, each checked against
 * the file's pieces root. A file whose layer is missing keeps none (to be
 * fetched from peers); a wrong one refuses the torrent.
 */
const withPieceLayers = (meta: Metainfo, layers: Bencode.BValue | undefined) => {
  if (meta.infoHashV2 === undefined) return Result.succeed(meta)
  const byRoot = new Map<string, Uint8Array>()
  if (layers !== undefined) {
    if (!Bencode.isDict(layers)) return fail("PieceLayers", "piece layers is not a dictionary")
    for (const [key, value] of Bencode.entries(layers)) {
      if (value instanceof Uint8Array) byRoot.set(Buffer.from(key).toString("hex"), value)
    }
  }
  const files: Array<FileEntry> = []
  for (const file of meta.files) {
    const layer = file.piecesRoot === undefined || file.length <= meta.pieceLength
      ? undefined
      : byRoot.get(Buffer.from(file.piecesRoot).toString("hex"))
    if (layer === undefined) {
      files.push(file)
      continue
    }
    const problem = checkPieceLayer(meta, file, layer)
    if (problem !== undefined) return fail("PieceLayers", problem)
    files.push({ ...file, pieceLayer: new Uint8Array(layer) })
  }
  return Result.succeed({ ...meta, files })
}

/** Why `layer` is not `file`'s piece layer, if it is not. */
export const checkPieceLayer = (meta: Metainfo, file: FileEntry, layer: Uint8Array): string | undefined => {
  const shown = JSON.stringify(file.path.join("/"))
  const pieces = Math.ceil(file.length / meta.pieceLength)
  if (layer.length !== pieces * Merkle.hashSize) {
    return `the piece layer of ${shown} is ${layer.length} bytes; ${pieces} pieces take ${pieces * Merkle.hashSize}`
  }
  const root = Merkle.rootOf(layer, Merkle.pieceLayer(meta.pieceLength), Merkle.blocksIn(file.length))
  return Buffer.compare(root, file.piecesRoot!) === 0
    ? undefined
    : `the piece layer of ${shown} does not lead to its pieces root`
}

/** The fields outside `info`: trackers, web seeds and descriptions. Lenient: bad optional fields are ignored. */
const torrentFields = (root: Bencode.BDict) => {
  const list = root["announce-list"]
  const tiers = Array.isArray(list)
    ? list.map((tier) => (Array.isArray(tier) ? tier.flatMap(textOf) : [])).filter((tier) => tier.length > 0)
    : []
  const announce = tiers.length > 0 ? tiers : textOf(root["announce"]).map((url) => [url])
  const urls = root["url-list"]
  const urlList = Array.isArray(urls) ? urls.flatMap(textOf) : textOf(urls)
  const comment = textOf(root["comment.utf-8"] ?? root["comment"])[0]
  const createdBy = textOf(root["created by"])[0]
  const date = root["creation date"]
  return {
    announce,
    urlList,
    ...(comment !== undefined ? { comment } : {}),
    ...(createdBy !== undefined ? { createdBy } : {}),
    ...(typeof date === "number" ? { creationDate: date } : {})
  }
}

const textOf = (value: Bencode.BValue | undefined): Array<string> =>
  value instanceof Uint8Array && value.length > 0 ? [Bencode.text(value)] : []

/** Why a path component is unsafe to create under the download folder, if it is. */
export const unsafeComponent = (component: string): string | undefined => {
  if (component.length === 0) return "has an empty path component"
  if (component === "." || component === "..") return `has a "${component}" path component`
  if (component.includes("/") || component.includes("\\")) return "has a path separator inside a component"
  if (component.includes("\0")) return "has a NUL byte in its path"
  if (/^[A-Za-z]:/.test(component)) return "starts with a drive letter"
  return undefined
}

/**
 * Two files at the same path, or a file where another needs a folder. Padding
 * files are never written, and libtorrent names them ".pad/<size>", so two pads
 * of one size share a path: they are left out.
 */
const findCollision = (files: ReadonlyArray<FileEntry>): string | undefined => {
  const seen = new Set<string>()
  const folders = new Set<string>()
  for (const file of files) {
    if (file.padding) continue
    const key = file.path.join("/")
    if (seen.has(key) || folders.has(key)) return `two entries share the path ${JSON.stringify(key)}`
    seen.add(key)
    for (let i = 1; i < file.path.length; i++) {
      const folder = file.path.slice(0, i).join("/")
      if (seen.has(folder)) return `${JSON.stringify(folder)} is both a file and a folder`
      folders.add(folder)
    }
  }
  return undefined
}

/** The SHA-1 of piece `index`, a view on `meta.pieces`. */
export const pieceHash = (meta: Metainfo, index: number): Uint8Array =>
  meta.pieces.subarray(index * 20, index * 20 + 20)

/** The length of piece `index` (the last one may be short). */
export const pieceSize = (meta: Metainfo, index: number): number =>
  index === meta.pieceCount - 1 ? meta.length - index * meta.pieceLength : meta.pieceLength

/** Re-assembles a .torrent file around the original info bytes (e.g. metadata fetched over ut_metadata), with the v2 piece layers known. */
export const encode = (meta: Metainfo): Uint8Array => {
  const fields: Record<string, unknown> = {
    ...(meta.announce[0]?.[0] !== undefined ? { announce: meta.announce[0][0] } : {}),
    ...(meta.announce.length > 0 ? { "announce-list": meta.announce } : {}),
    ...(meta.urlList.length > 0 ? { "url-list": meta.urlList } : {}),
    ...(meta.comment !== undefined ? { comment: meta.comment } : {}),
    ...(meta.createdBy !== undefined ? { "created by": meta.createdBy } : {}),
    ...(meta.creationDate !== undefined ? { "creation date": meta.creationDate } : {})
  }
  const layers = meta.files.flatMap((file) =>
    file.piecesRoot !== undefined && file.pieceLayer !== undefined
      ? [[file.piecesRoot, Bencode.encode(file.pieceLayer)] as const]
      : []
  )
  return Bencode.encodeDict([
    ...Object.entries(fields).map(([key, value]) => [key, Bencode.encode(value)] as const),
    ["info", meta.info],
    ...(layers.length > 0 ? [["piece layers", Bencode.encodeDict(layers)] as const] : [])
  ])
}

/** What a v2 piece is checked against: a node of its file's tree, over the piece's bytes that are the file's. */
export interface PieceTarget {
  /** The node: the piece's hash in the piece layer, or the pieces root of a file of one piece. */
  readonly hash: Uint8Array
  /** How many of the piece's bytes are its file's (the rest is padding). */
  readonly length: number
  /** The leaves under the node: the piece's blocks padded to a power of two. */
  readonly leaves: number
}

/**
 * v2: what piece `index` is checked against; undefined in a v1 torrent, and
 * while its file's piece layer is unknown.
 */
export const pieceTarget = (meta: Metainfo, index: number): PieceTarget | undefined => {
  if (meta.infoHashV2 === undefined) return undefined
  const file = fileAt(meta, index * meta.pieceLength)
  if (file?.piecesRoot === undefined) return undefined
  if (file.length <= meta.pieceLength) {
    return { hash: file.piecesRoot, length: file.length, leaves: Merkle.nextPowerOfTwo(Merkle.blocksIn(file.length)) }
  }
  if (file.pieceLayer === undefined) return undefined
  const k = (index * meta.pieceLength - file.offset) / meta.pieceLength
  return {
    hash: file.pieceLayer.subarray(k * Merkle.hashSize, (k + 1) * Merkle.hashSize),
    length: Math.min(meta.pieceLength, file.length - k * meta.pieceLength),
    leaves: meta.pieceLength / Merkle.blockSize
  }
}

/** The file (not padding, not empty) holding byte `offset` of the torrent. */
export const fileAt = (meta: Metainfo, offset: number): FileEntry | undefined => {
  let low = 0, high = meta.files.length - 1
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (meta.files[mid]!.offset <= offset) low = mid
    else high = mid - 1
  }
  // Empty files share their offset with the next: step over them.
  while (low < meta.files.length && meta.files[low]!.length === 0) low++
  const file = meta.files[low]
  return file !== undefined && !file.padding && offset < file.offset + file.length ? file : undefined
}

/** v2: the files whose piece layer is needed and not known yet (a magnet link's). */
export const missingPieceLayers = (meta: Metainfo): ReadonlyArray<FileEntry> =>
  meta.files.filter((file) =>
    file.piecesRoot !== undefined && file.length > meta.pieceLength && file.pieceLayer === undefined
  )
