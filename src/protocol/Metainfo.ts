/**
 * Metainfo (.torrent files): BEP 3 v1 single- and multi-file, BEP 12 tiers,
 * BEP 27 private, BEP 19 web seeds, BEP 47 padding files. Hybrid (BEP 52 v1+v2)
 * torrents are read through their v1 part; v2-only torrents are refused.
 *
 * Every file path is checked here, once, so nothing downstream can be led out
 * of the download folder.
 */
import { Result, Schema } from "effect"
import * as Bencode from "./Bencode.ts"
import * as InfoHash from "./InfoHash.ts"

export const MetainfoProblem = Schema.Literals([
  "Bencode",
  "Malformed",
  "UnsafePath",
  "PathCollision",
  "PieceHashes",
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
  padding: Schema.Boolean
})
export type FileEntry = typeof FileEntry.Type

export const Metainfo = Schema.Struct({
  infoHash: InfoHash.InfoHash,
  name: Schema.String,
  pieceLength: Schema.Int,
  pieceCount: Schema.Int,
  /** Concatenated 20-byte SHA-1 piece hashes. */
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
  /** The original bencoded `info` dictionary (its SHA-1 is the info-hash). */
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
  return Result.map(fromInfo(info), (meta) => ({ ...meta, ...torrentFields(root) }))
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
 * The info-hash is the SHA-1 of the dictionary's original bytes.
 */
export const fromInfo = (info: Bencode.BDict): Result.Result<Metainfo, MetainfoError> => {
  const infoBytes = Bencode.sourceBytes(info) ?? Bencode.encode(info)
  if (info["pieces"] === undefined && (info["file tree"] !== undefined || info["meta version"] === 2)) {
    return fail("Unsupported", "BitTorrent v2-only torrents (BEP 52) are not supported yet")
  }
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

/** Re-assembles a .torrent file around the original info bytes (e.g. metadata fetched over ut_metadata). */
export const encode = (meta: Metainfo): Uint8Array => {
  const fields: Record<string, unknown> = {
    ...(meta.announce[0]?.[0] !== undefined ? { announce: meta.announce[0][0] } : {}),
    ...(meta.announce.length > 0 ? { "announce-list": meta.announce } : {}),
    ...(meta.urlList.length > 0 ? { "url-list": meta.urlList } : {}),
    ...(meta.comment !== undefined ? { comment: meta.comment } : {}),
    ...(meta.createdBy !== undefined ? { "created by": meta.createdBy } : {}),
    ...(meta.creationDate !== undefined ? { "creation date": meta.creationDate } : {})
  }
  const parts: Array<Uint8Array> = [Buffer.from("d")]
  for (const key of [...Object.keys(fields), "info"].sort()) {
    parts.push(Bencode.encode(key), key === "info" ? meta.info : Bencode.encode(fields[key]))
  }
  parts.push(Buffer.from("e"))
  return Buffer.concat(parts)
}
