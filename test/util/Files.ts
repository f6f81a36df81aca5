/**
 * Files for the interop tests: temporary folders (removed with the test's
 * scope), trees of random files, torrents made from them by other tools
 * (create-torrent, mktorrent), and checks of what a download left on disk.
 */
import createTorrent from "create-torrent"
import { Effect, Result } from "effect"
import { execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as Resume from "../../src/torrent/Resume.ts"

/** A fresh folder under the OS temp folder, removed (with everything in it) when the scope closes. */
export const tempDir = (label: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(join(tmpdir(), `effect-torrent-${label}-`))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

export interface FileSpec {
  /** Path under the tree's root, "/"-separated. */
  readonly path: string
  readonly size: number
}

/** Deterministic bytes (xorshift32), so a failure can be reproduced. */
export const deterministicBytes = (length: number, seed: number): Buffer => {
  const out = Buffer.alloc(length)
  let x = seed * 2654435761 >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

/** Writes files of random bytes (folders as needed) under `root`. */
export const writeTree = (root: string, files: ReadonlyArray<FileSpec>) =>
  Effect.sync(() => {
    for (const file of files) {
      const target = join(root, ...file.path.split("/"))
      Fs.mkdirSync(dirname(target), { recursive: true })
      const fd = Fs.openSync(target, "w")
      try {
        // In 4 MiB chunks: big files never sit in memory whole.
        for (let written = 0; written < file.size;) {
          const chunk = randomBytes(Math.min(4 * 1024 * 1024, file.size - written))
          Fs.writeSync(fd, chunk)
          written += chunk.length
        }
      } finally {
        Fs.closeSync(fd)
      }
    }
  })

export interface Torrent {
  readonly meta: Metainfo.Metainfo
  /** The .torrent file, for the other clients. */
  readonly file: string
}

const decode = (bytes: Uint8Array): Metainfo.Metainfo => {
  const meta = Metainfo.decode(bytes)
  if (Result.isFailure(meta)) throw meta.failure
  return meta.success
}

/**
 * Makes a torrent of `input` (a file or a folder) with create-torrent and
 * writes it to `out`.
 */
export const createWithCreateTorrent = (
  input: string,
  out: string,
  options: { readonly pieceLength: number; readonly announce: ReadonlyArray<string>; readonly private?: boolean }
) =>
  Effect.callback<Torrent>((resume) => {
    const settings = {
      pieceLength: options.pieceLength,
      announceList: options.announce.map((url) => [url]),
      private: options.private ?? false
    }
    createTorrent(input, settings, (error, bytes) => {
      if (error !== null) return resume(Effect.die(error))
      Fs.writeFileSync(out, bytes)
      resume(Effect.sync(() => ({ meta: decode(bytes), file: out })))
    })
  })

/** Makes a torrent of `input` with mktorrent (`pieceLength` a power of two, at least 32 KiB). */
export const createWithMktorrent = (
  input: string,
  out: string,
  options: { readonly pieceLength: number; readonly announce: ReadonlyArray<string> }
) =>
  Effect.callback<Torrent>((resume) => {
    const args = [
      ...options.announce.flatMap((url) => ["-a", url]),
      "-l",
      String(Math.log2(options.pieceLength)),
      "-o",
      out,
      input
    ]
    execFile("mktorrent", args, { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error !== null) return resume(Effect.die(new Error(`mktorrent failed: ${stderr}`)))
      resume(Effect.sync(() => ({ meta: decode(Fs.readFileSync(out)), file: out })))
    })
  })

/** Where file `i` of the torrent lives under `root`. */
export const pathOf = (root: string, meta: Metainfo.Metainfo, i: number) => join(root, ...meta.files[i]!.path)

/** Whether the two files hold exactly the same bytes (compared in chunks). */
export const sameBytes = (a: string, b: string): boolean => {
  const size = Fs.statSync(a).size
  if (Fs.statSync(b).size !== size) return false
  const fa = Fs.openSync(a, "r")
  const fb = Fs.openSync(b, "r")
  try {
    const ba = Buffer.alloc(1024 * 1024)
    const bb = Buffer.alloc(1024 * 1024)
    for (let at = 0; at < size;) {
      const n = Fs.readSync(fa, ba, 0, ba.length, at)
      Fs.readSync(fb, bb, 0, n, at)
      if (ba.compare(bb, 0, n, 0, n) !== 0) return false
      at += n
    }
    return true
  } finally {
    Fs.closeSync(fa)
    Fs.closeSync(fb)
  }
}

/** Reads the torrent's bytes [start, end) from the files under `root`; missing data reads as undefined. */
const readRange = (root: string, meta: Metainfo.Metainfo, start: number, end: number): Buffer | undefined => {
  const out = Buffer.alloc(end - start)
  for (const [i, file] of meta.files.entries()) {
    const from = Math.max(start, file.offset)
    const to = Math.min(end, file.offset + file.length)
    if (to <= from) continue
    let fd: number
    try {
      fd = Fs.openSync(pathOf(root, meta, i), "r")
    } catch {
      return undefined
    }
    try {
      const n = Fs.readSync(fd, out, from - start, to - from, from - file.offset)
      if (n !== to - from) return undefined
    } finally {
      Fs.closeSync(fd)
    }
  }
  return out
}

/** Which pieces are on disk under `root` with the right SHA-1 (hashed here, independently of the engine). */
export const piecesOnDisk = (root: string, meta: Metainfo.Metainfo): Array<boolean> =>
  Array.from({ length: meta.pieceCount }, (_, index) => {
    const start = index * meta.pieceLength
    const data = readRange(root, meta, start, start + Metainfo.pieceSize(meta, index))
    if (data === undefined) return false
    const hash = createHash("sha1").update(data).digest()
    return hash.equals(Metainfo.pieceHash(meta, index))
  })

/** The number of bytes the given pieces hold. */
export const bytesOf = (meta: Metainfo.Metainfo, pieces: ReadonlyArray<boolean>): number =>
  pieces.reduce((total, has, index) => (has ? total + Metainfo.pieceSize(meta, index) : total), 0)

/** The whole torrent's bytes, concatenated (for FakeSeeder). */
export const torrentBytes = (root: string, meta: Metainfo.Metainfo): Buffer => {
  const bytes = readRange(root, meta, 0, meta.length)
  if (bytes === undefined) throw new Error(`the data of ${meta.name} is not all under ${root}`)
  return bytes
}

/**
 * Everything under `dir` (symlinks not followed; `skip` left out): each path
 * with its kind and, for files, size, mtime and SHA-1; for symlinks, where
 * they point. Two equal snapshots mean nothing was created or modified.
 */
export const snapshot = (dir: string, skip: ReadonlyArray<string> = []): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (at: string) => {
    for (const name of Fs.readdirSync(at)) {
      const path = join(at, name)
      if (skip.includes(path)) continue
      const stat = Fs.lstatSync(path)
      if (stat.isSymbolicLink()) out[path] = `symlink to ${Fs.readlinkSync(path)}`
      else if (stat.isDirectory()) {
        out[path] = "folder"
        walk(path)
      } else {
        const hash = createHash("sha1").update(Fs.readFileSync(path)).digest("hex")
        out[path] = `file of ${stat.size} bytes, modified ${stat.mtimeMs}, sha1 ${hash}`
      }
    }
  }
  walk(dir)
  return out
}

/** A source file of `size` bytes under `<temp>/src`, its torrent (no trackers) and a download folder `dst` (not created). */
export const sourceTorrent = (label: string, size: number, pieceLength: number) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, [{ path: `${label}.bin`, size }])
    const torrentFile = join(root, `${label}.torrent`)
    const { meta } = yield* createWithCreateTorrent(join(src, `${label}.bin`), torrentFile, {
      pieceLength,
      announce: []
    })
    return { src, dst: join(root, "dst"), torrentFile, meta, data: torrentBytes(src, meta) }
  })

/** The pieces the download's resume file records, or undefined if there is none. */
export const resumePieces = (dst: string, meta: Metainfo.Metainfo): Array<boolean> | undefined => {
  const file = join(dst, Resume.stateFolder, `${meta.infoHash}.resume`)
  if (!Fs.existsSync(file)) return undefined
  const record = Resume.decode(Fs.readFileSync(file))
  if (record === undefined) throw new Error("the resume file is damaged")
  return Array.from({ length: meta.pieceCount }, (_, i) => record.pieces.has(i))
}

/** The indexes of the pieces marked true. */
export const indexes = (pieces: ReadonlyArray<boolean>) => pieces.flatMap((has, i) => (has ? [i] : []))

/** One file of `size` bytes under `<root>/src` and its torrent (64 KiB pieces, announcing to `announce` if given); `dst` to download into. */
export const workspace = (label: string, size: number, announce?: string) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, [{ path: "data.bin", size }])
    const torrent = yield* createWithMktorrent(join(src, "data.bin"), join(root, "data.torrent"), {
      pieceLength: 64 * 1024,
      announce: announce === undefined ? [] : [announce]
    })
    return { root, src, dst: join(root, "dst"), ...torrent }
  })
