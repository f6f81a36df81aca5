/**
 * DiskWriter: puts verified pieces into the torrent's files and reads them
 * back (resume checks, seeding).
 *
 * A piece may span several files; each part is written at its position by
 * the PieceWorker. Files are created lazily (sparse), zero-length
 * files and folders up front.
 * At most `maxOpenFiles` handles stay open (least recently used is closed).
 * Every path is resolved under the download folder and checked again after
 * resolving symlinks, which refuses a symlink leading outside with a clear
 * message before any data is requested. That check alone loses to a folder
 * swapped for a symlink between it and the open, so files are opened by
 * SafeOpen, which on Linux follows no symlink below the download folder (so
 * it also refuses one leading elsewhere inside, which the check allows).
 */
import { Context, Effect, FileSystem, Layer, Path, Schema, Semaphore } from "effect"
import * as NodeFs from "node:fs"
import type { PlatformError } from "effect/PlatformError"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as PieceWorker from "./PieceWorker.ts"
import * as SafeOpen from "./SafeOpen.ts"

export class DiskError extends Schema.TaggedError<DiskError>()("DiskError", {
  reason: Schema.Literals(["UnsafePath", "NoSpace", "Io"]),
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    // Control characters (a hostile path's NUL) shown escaped, not printed.
    const path = this.path.replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    return this.reason === "NoSpace"
      ? `the disk is full writing ${path}`
      : this.reason === "UnsafePath"
      ? `refusing to write ${path}: ${this.detail}`
      : `cannot access ${path}: ${this.detail}`
  }
}

/** Symlinks followed when checking where a path leads (Linux allows 40). */
const maxSymlinkHops = 40

/** Memory for pieces read to serve uploads. */
const readCacheBytes = 8 * 1024 * 1024

export interface Segment {
  readonly file: number
  /** Position in the file. */
  readonly position: number
  /** Position in the piece. */
  readonly offset: number
  readonly length: number
}

/** The parts of the files that piece `index` covers (padding files included). */
export const segments = (meta: Metainfo.Metainfo, index: number): Array<Segment> =>
  rangeSegments(meta, index * meta.pieceLength, Metainfo.pieceSize(meta, index))

/** The parts of the files that `length` bytes of the torrent's data from `start` cover (`offset`: in those bytes). */
export const rangeSegments = (meta: Metainfo.Metainfo, start: number, length: number): Array<Segment> => {
  const end = start + length
  const out: Array<Segment> = []
  // Binary search for the first file that ends after `start`.
  let lo = 0, hi = meta.files.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const f = meta.files[mid]!
    if (f.offset + f.length <= start) lo = mid + 1
    else hi = mid
  }
  for (let i = lo; i < meta.files.length; i++) {
    const file = meta.files[i]!
    if (file.offset >= end) break
    const from = Math.max(start, file.offset)
    const to = Math.min(end, file.offset + file.length)
    if (to > from) out.push({ file: i, position: from - file.offset, offset: from - start, length: to - from })
  }
  return out
}

export class DiskWriter extends Context.Service<DiskWriter, {
  /** Checks every path, creates folders and zero-length files. */
  readonly prepare: Effect.Effect<void, DiskError>
  /**
   * Writes piece `index`; with `sha1`, only if that is the piece's SHA-1
   * (false, and nothing written, if not), checked where it is written.
   */
  readonly write: (index: number, piece: Uint8Array, sha1?: Uint8Array) => Effect.Effect<boolean, DiskError>
  /** Reads piece `index` into `into`; false when some of its data is not on disk. */
  readonly read: (index: number, into: Uint8Array) => Effect.Effect<boolean, DiskError>
  /**
   * Copies a block of a verified piece, from `begin`, into all of `into` (for
   * uploading: straight into the batch going out). Pieces are read whole into
   * a small LRU cache (peers usually ask for a piece's blocks in a row).
   */
  readonly readBlock: (index: number, begin: number, into: Uint8Array) => Effect.Effect<void, DiskError>
  /** Syncs every open file to disk. */
  readonly flush: Effect.Effect<void, DiskError>
}>()("effect-torrent/torrent/DiskWriter") {
  static readonly layer = (meta: Metainfo.Metainfo, options: Options) => Layer.effect(DiskWriter, make(meta, options))
}

interface Handle {
  readonly fd: number
  readonly writable: boolean
}

export interface Options {
  readonly downloadDir: string
  readonly maxOpenFiles?: number
  /** Selected files, by index (default: all); only they get created up front. */
  readonly wanted?: ReadonlyArray<boolean>
}

export const make = Effect.fnUntraced(function*(meta: Metainfo.Metainfo, options: Options) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const worker = yield* PieceWorker.PieceWorker
  const maxOpen = options.maxOpenFiles ?? 32
  const root = path.resolve(options.downloadDir)
  const handles = new Map<number, Handle>() // insertion order = LRU order
  /**
   * Files found missing, not asked about again (the first check of a fresh
   * download read every piece, each asking): only we make them, by opening.
   */
  const absent = new Set<number>()
  const lock = yield* Semaphore.make(1)
  let folder: SafeOpen.Folder | undefined

  const pathOf = (index: number) => path.join(root, ...meta.files[index]!.path)

  const fail = (file: string, error: PlatformError | NodeJS.ErrnoException | PieceWorker.WriteFailed | string) =>
    new DiskError({
      reason: typeof error !== "string" && isNoSpace(error) ? "NoSpace" : "Io",
      path: file,
      detail: typeof error === "string" ? error : error.message
    })

  /** The download folder, made and opened at the first use (under `lock`), closed with the layer. */
  const openFolder = Effect.suspend(() =>
    folder !== undefined ? Effect.succeed(folder) : SafeOpen.openFolder(root).pipe(
      Effect.tap((opened) => Effect.sync(() => (folder = opened))),
      Effect.mapError((e) => fail(root, e)),
      Effect.uninterruptible
    )
  )

  /** Resolves symlinks of the deepest existing ancestor and checks it is inside the root. */
  const checkInside = Effect.fnUntraced(function*(target: string) {
    const { real: rootReal } = yield* openFolder
    if (!SafeOpen.isInside(root, target)) {
      return yield* new DiskError({ reason: "UnsafePath", path: target, detail: "it is outside the download folder" })
    }
    // A dangling symlink does not exist, but opening it would create its
    // target: follow it (a bounded number of hops) instead of its folder.
    let probe = target
    for (let hops = 0; probe !== root && !(yield* fs.exists(probe).pipe(Effect.orElseSucceed(() => false)));) {
      const link = yield* fs.readLink(probe).pipe(Effect.option)
      if (link._tag === "Some" && ++hops > maxSymlinkHops) {
        return yield* new DiskError({
          reason: "UnsafePath",
          path: target,
          detail: "it leads through too many symlinks"
        })
      }
      probe = link._tag === "Some" ? path.resolve(path.dirname(probe), link.value) : path.dirname(probe)
    }
    // Unresolvable (changed under us since `exists`, or unreadable): the
    // open, which follows no symlink, is the check that holds, and reports.
    const real = yield* fs.realPath(probe).pipe(Effect.orElseSucceed(() => undefined))
    if (real !== undefined && !SafeOpen.isInside(rootReal, real)) {
      return yield* new DiskError({
        reason: "UnsafePath",
        path: target,
        detail: `a symlink leads outside the download folder (to ${real})`
      })
    }
  })

  /** Checks file `index`'s path components (a Metainfo built in code skips decoding), then where it leads. */
  const checkFile = Effect.fnUntraced(function*(index: number) {
    const file = pathOf(index)
    for (const component of meta.files[index]!.path) {
      const problem = Metainfo.unsafeComponent(component)
      if (problem !== undefined) {
        return yield* new DiskError({
          reason: "UnsafePath",
          path: file,
          detail: `its component ${JSON.stringify(component)} ${problem}`
        })
      }
    }
    yield* checkInside(file)
  })

  const close = (index: number) => {
    const handle = handles.get(index)
    handles.delete(index)
    return handle === undefined ? Effect.void : SafeOpen.close(handle.fd)
  }

  /** Opens file `index` (or takes it from the cache), closing the least recently used beyond `maxOpen` but none of `kept`. */
  const open = Effect.fnUntraced(function*(index: number, writable: boolean, kept: ReadonlyArray<number> = []) {
    const cached = handles.get(index)
    if (cached !== undefined && (cached.writable || !writable)) {
      handles.delete(index)
      handles.set(index, cached)
      return cached.fd
    }
    yield* close(index)
    if (handles.size >= maxOpen) {
      const oldest = [...handles.keys()].find((file) => !kept.includes(file))
      if (oldest !== undefined) yield* close(oldest)
    }
    const file = pathOf(index)
    yield* checkFile(index)
    // Uninterruptible until the descriptor is in `handles`, which closes it.
    return yield* SafeOpen.openFile(yield* openFolder, meta.files[index]!.path, writable).pipe(
      Effect.tap((fd) =>
        Effect.sync(() => {
          handles.set(index, { fd, writable })
          absent.delete(index)
        })
      ),
      Effect.mapError((e) =>
        e instanceof SafeOpen.UnsafePath
          ? new DiskError({ reason: "UnsafePath", path: file, detail: e.detail })
          : fail(file, e)
      ),
      Effect.uninterruptible
    )
  })

  yield* Effect.addFinalizer(() =>
    Effect.forEach([...handles.keys()], (index) => close(index), { discard: true }).pipe(
      Effect.andThen(folder === undefined ? Effect.void : SafeOpen.close(folder.fd))
    )
  )

  const prepare = Effect.fnUntraced(function*() {
    for (let i = 0; i < meta.files.length; i++) {
      const file = meta.files[i]!
      yield* checkFile(i)
      if (file.length === 0 && !file.padding && options.wanted?.[i] !== false) {
        yield* open(i, true).pipe(Effect.andThen(close(i)))
      }
    }
  }, lock.withPermits(1))

  const write = Effect.fnUntraced(function*(index: number, piece: Uint8Array, sha1?: Uint8Array) {
    const written = segments(meta, index).filter((s) => !meta.files[s.file]!.padding)
    const files = written.map((s) => s.file)
    const parts: Array<PieceWorker.Part> = []
    // The piece's files stay open together until the worker has written them all.
    for (const s of written) {
      parts.push({ fd: yield* open(s.file, true, files), offset: s.offset, length: s.length, position: s.position })
    }
    return yield* worker.write(piece, parts, sha1).pipe(
      Effect.mapError((e) => fail(pathOf(written[e.part]?.file ?? written[0]!.file), e))
    )
  }, lock.withPermits(1))

  const read = Effect.fnUntraced(function*(index: number, into: Uint8Array) {
    for (const s of segments(meta, index)) {
      const target = into.subarray(s.offset, s.offset + s.length)
      if (meta.files[s.file]!.padding) {
        target.fill(0)
        continue
      }
      // A file not open yet may be missing (a piece never written): that is no error, the piece is not there.
      if (
        !handles.has(s.file) &&
        (absent.has(s.file) || !(yield* fs.exists(pathOf(s.file)).pipe(Effect.orElseSucceed(() => false))))
      ) {
        absent.add(s.file)
        return false
      }
      const fd = yield* open(s.file, false)
      let done = 0
      while (done < s.length) {
        const n = yield* SafeOpen.nodeFs<number>((callback) =>
          NodeFs.read(fd, target, done, s.length - done, s.position + done, callback)
        ).pipe(Effect.mapError((e) => fail(pathOf(s.file), e)))
        if (n === 0) return false
        done += n
      }
    }
    return true
  }, lock.withPermits(1))

  /**
   * Syncs the files written to. Each is synced through a descriptor of its
   * own, outside the lock: syncing a large file takes a while, and reads
   * (uploads, file streams) and writes go on meanwhile; a descriptor of the
   * cache could be closed under it.
   */
  const flush = Effect.gen(function*() {
    const written = yield* Effect.sync(() => [...handles.entries()].filter(([, h]) => h.writable).map(([i]) => i)).pipe(
      lock.withPermits(1)
    )
    if (written.length === 0) return
    const folder = yield* openFolder // open already: files were written
    yield* Effect.forEach(written, (index) =>
      Effect.acquireUseRelease(
        SafeOpen.openFile(folder, meta.files[index]!.path, false),
        (fd) => SafeOpen.nodeFs((done) => NodeFs.fsync(fd, (e) => done(e, undefined))),
        SafeOpen.close
      ).pipe(
        Effect.mapError((e) =>
          e instanceof SafeOpen.UnsafePath
            ? new DiskError({ reason: "UnsafePath", path: pathOf(index), detail: e.detail })
            : fail(pathOf(index), e)
        )
      ), { discard: true })
  })

  /**
   * Pieces read for uploads, least recently used first. Buffers are reused:
   * one allocated per piece read lived on into the old generation, and their
   * off-heap bytes forced a full collection every few dozen MiB uploaded (41
   * per 512 MiB seeded). So no view of one leaves: the block is copied into
   * the caller's buffer, and no caller holds memory that is read over.
   */
  const cache = new Map<number, Uint8Array>()
  const cachePieces = Math.max(2, Math.floor(readCacheBytes / meta.pieceLength))
  const readBlock = Effect.fnUntraced(function*(index: number, begin: number, into: Uint8Array) {
    let piece = cache.get(index)
    if (piece === undefined) {
      let memory: ArrayBufferLike | undefined
      if (cache.size >= cachePieces) {
        const [oldest, evicted] = cache.entries().next().value!
        cache.delete(oldest)
        memory = evicted.buffer
      }
      // Each buffer holds a whole piece (the last is shorter); not zeroed: every byte is read over.
      piece = new Uint8Array(
        memory ?? Buffer.allocUnsafeSlow(meta.pieceLength).buffer,
        0,
        Metainfo.pieceSize(meta, index)
      )
      if (!(yield* read(index, piece))) {
        return yield* new DiskError({ reason: "Io", path: meta.name, detail: `piece ${index} is missing on disk` })
      }
    } else {
      cache.delete(index)
    }
    cache.set(index, piece)
    into.set(piece.subarray(begin, begin + into.length))
  })

  return DiskWriter.of({ prepare: prepare(), write, read, readBlock, flush })
})

const isNoSpace = (error: PlatformError | NodeJS.ErrnoException | PieceWorker.WriteFailed): boolean => {
  if (!("_tag" in error) || error._tag === "WriteFailed") return error.code === "ENOSPC"
  const cause = (error.reason as { readonly cause?: unknown }).cause
  return typeof cause === "object" && cause !== null && (cause as { code?: unknown }).code === "ENOSPC"
}
