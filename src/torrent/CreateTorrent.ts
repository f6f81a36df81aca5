/**
 * CreateTorrent: makes a torrent of a file or a folder on disk, as an
 * Effect: BitTorrent v1 by default, v2-only or hybrid (BEP 52) on request. The CLI's `effect-torrent create` is this plus argument
 * parsing, a progress line and writing the .torrent file.
 *
 * ```ts
 * const created = yield* CreateTorrent.create("photos", {
 *   trackers: ["udp://tracker.example:6969"],
 *   onProgress: ({ bytesHashed, totalLength }) => Effect.log(`${bytesHashed} of ${totalLength} bytes hashed`)
 * })
 * yield* fs.writeFile("photos.torrent", created.bytes)
 * ```
 *
 * - A file gives a single-file torrent; a folder a multi-file one with every
 *   file below it (hidden and zero-length ones too), sorted component by
 *   component in byte order (`Create.sortFiles`).
 * - Symbolic links inside the folder are never followed out of it: a link to
 *   a regular file inside the folder is included (under the link's name,
 *   read through the link); a link to a folder, a link pointing outside the
 *   folder and a dangling link are skipped, each reported to `onSkip` and
 *   listed in the result's `skipped`. The path given may itself be a link.
 *   FIFOs, sockets and devices are refused.
 * - Pieces are hashed streaming through the files in 4 MiB reads into one
 *   buffer (pieces span file boundaries); nothing holds a whole file. A file
 *   that shrinks or grows while it is read fails with `Changed`.
 * - Progress is a callback returning an Effect, `onProgress`, called once
 *   with 0 bytes when the files are listed (so the total is known before
 *   hashing starts) and after every read; it runs in the hashing fiber, so a
 *   slow callback slows the hashing, and its failure ends the creation. A
 *   callback rather than a Stream of events: the caller gets the result as a
 *   plain value, and one that does not care about progress passes nothing.
 *   Throttle in the callback if each 4 MiB is too often for a display.
 * - The torrent is read back with `Metainfo.decode` before it is returned
 *   (`Create.encode`). Nothing is written: what to do with the bytes is the
 *   caller's choice.
 */
import { Clock, Effect, FileSystem, Option, Path, type PlatformError } from "effect"
import * as Create from "../protocol/Create.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"

export { CreateError, CreateProblem } from "../protocol/Create.ts"

/** Bytes hashed so far of all the files' `totalLength`. */
export interface Progress {
  readonly bytesHashed: number
  readonly totalLength: number
}

/** Why a symbolic link in the folder was left out. */
export type SkipReason = "DanglingLink" | "LinkOutside" | "LinkToFolder" | "LinkToSpecialFile"

/** An entry of the folder left out of the torrent: its path components below the folder, and why. */
export interface Skipped {
  readonly path: ReadonlyArray<string>
  readonly reason: SkipReason
}

export interface Options<E = never, R = never> {
  /**
   * Bytes per piece: a power of two from 16 KiB to 64 MiB (default: the
   * smallest from 16 KiB to 16 MiB that gives at most 2000 pieces).
   */
  readonly pieceLength?: number | undefined
  /** Tracker announce URLs, each in its own tier, in order (http, https, udp, ws or wss). */
  readonly trackers?: ReadonlyArray<string> | undefined
  /** Web seed URLs (BEP 19, http or https). */
  readonly webSeeds?: ReadonlyArray<string> | undefined
  /**
   * `v1` (default): SHA-1 pieces; `v2`: BEP 52's per-file Merkle trees only
   * (readable by v2 clients alone); `hybrid`: both, for every client.
   */
  readonly version?: Create.Version | undefined
  /** Marks the torrent private (BEP 27: trackers only, no DHT or PEX). */
  readonly private?: boolean | undefined
  readonly comment?: string | undefined
  /** Default: `effect-torrent/<version>`. */
  readonly createdBy?: string | undefined
  /** Seconds since the epoch (default: the Clock's time once hashing ends). */
  readonly creationDate?: number | undefined
  /** Called with 0 bytes once the files are listed, then after every read; see the module's doc. */
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void, E, R>) | undefined
  /** Called for each link left out, as the folder is listed (before hashing). */
  readonly onSkip?: ((skipped: Skipped) => Effect.Effect<void, E, R>) | undefined
}

export interface Created {
  /** The .torrent file's bytes. */
  readonly bytes: Uint8Array
  /** The same bytes read back by `Metainfo.decode`. */
  readonly meta: Metainfo.Metainfo
  /** The links left out of the folder (also passed to `onSkip`). */
  readonly skipped: ReadonlyArray<Skipped>
}

/**
 * Makes a torrent of the file or folder at `path` (its name is the last
 * component of `path`, made absolute). Fails with a `CreateError` whose
 * `problem` says what went wrong: `PieceLength`, `Url`, `Missing`,
 * `NotRegular`, `NoData`, `Unreadable`, `Changed` or `SelfCheck`; its
 * message is a sentence naming the file.
 */
export const create = Effect.fn("CreateTorrent.create")(
  function*<E = never, R = never>(
    path: string,
    options: Options<E, R> = {}
  ): Effect.fn.Return<Created, Create.CreateError | E, FileSystem.FileSystem | Path.Path | R> {
    if (options.pieceLength !== undefined) yield* Effect.fromResult(Create.checkPieceLength(options.pieceLength))
    const trackers = options.trackers ?? []
    const webSeeds = options.webSeeds ?? []
    yield* Effect.fromResult(Create.checkUrls(trackers, webSeeds, { tracker: "tracker", webSeed: "web seed" }))

    const source = yield* list(path, options.onSkip)
    const pieceLength = options.pieceLength ?? Create.autoPieceLength(source.totalLength)
    const { pieces, v2 } = yield* hashPieces(path, source, pieceLength, options.version ?? "v1", options.onProgress)
    const creationDate = options.creationDate ?? Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const created = yield* Effect.fromResult(Create.encode({
      name: source.name,
      multiFile: source.multiFile,
      files: source.files,
      pieceLength,
      pieces,
      v2,
      trackers,
      webSeeds,
      private: options.private ?? false,
      comment: options.comment,
      createdBy: options.createdBy ?? Create.createdBy,
      creationDate
    }))
    return { ...created, skipped: source.skipped } satisfies Created
  }
)

// ---------------------------------------------------------------- helpers

/** Bytes per read while hashing. */
const readSize = 4 * 1024 * 1024

/** A file to hash: its path in the torrent and where to read it. */
interface Entry extends Create.SourceFile {
  /** The path to read (a real path: for an included link, its target). */
  readonly source: string
}

interface Source {
  readonly name: string
  readonly multiFile: boolean
  /** In torrent order. */
  readonly files: ReadonlyArray<Entry>
  readonly totalLength: number
  readonly skipped: ReadonlyArray<Skipped>
}

const error = (problem: Create.CreateProblem, detail: string) => new Create.CreateError({ problem, detail })

/** A file-system failure in a few words, without the call that failed (the message names the path). */
const failure = (e: PlatformError.PlatformError): string => {
  const reason = e.reason
  if (reason._tag === "NotFound") return "no such file or folder"
  if (reason._tag === "PermissionDenied") return "permission denied"
  if (reason._tag === "AlreadyExists") return "it exists already"
  // Node's "ENOTDIR: not a directory, scandir '/x/y'" says what went wrong between the code and the call.
  const text = reason.cause instanceof Error ? reason.cause.message : reason.message
  return /^E[A-Z0-9]+: (.*?)(?:, \w+ '.*')?$/.exec(text)?.[1] ?? text
}

/** The files of `input` (a file or a folder), in torrent order. */
const list = Effect.fn("CreateTorrent.list")(
  function*<E, R>(input: string, onSkip: Options<E, R>["onSkip"]) {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const absolute = path.resolve(input)
    const name = path.basename(absolute)
    const info = yield* fs.stat(absolute).pipe(
      Effect.mapError((e) => error(e.reason._tag === "NotFound" ? "Missing" : "Unreadable", `${input}: ${failure(e)}`))
    )
    const root = yield* fs.realPath(absolute).pipe(
      Effect.mapError((e) => error("Unreadable", `${input}: ${failure(e)}`))
    )

    if (info.type === "File") {
      const length = Number(info.size)
      if (length === 0) return yield* error("NoData", `${input} is empty; a torrent needs data`)
      return {
        name,
        multiFile: false,
        files: [{ path: [], length, source: root }],
        totalLength: length,
        skipped: []
      } satisfies Source
    }
    if (info.type !== "Directory") return yield* error("NotRegular", `${input} is neither a file nor a folder`)

    const files: Array<Entry> = []
    const skipped: Array<Skipped> = []
    const inside = (real: string) => real.startsWith(root.endsWith(path.sep) ? root : root + path.sep)
    const shown = (components: ReadonlyArray<string>) => JSON.stringify(path.join(input, ...components))
    const unreadable = (components: ReadonlyArray<string>) => (e: PlatformError.PlatformError) =>
      error("Unreadable", `${shown(components)}: ${failure(e)}`)
    const skip = (components: ReadonlyArray<string>, reason: SkipReason) => {
      const entry: Skipped = { path: components, reason }
      skipped.push(entry)
      return onSkip === undefined ? Effect.void : onSkip(entry)
    }

    const walk = (dir: string, prefix: ReadonlyArray<string>): Effect.Effect<void, Create.CreateError | E, R> =>
      Effect.gen(function*() {
        const entries = yield* fs.readDirectoryEntries(dir).pipe(Effect.mapError(unreadable(prefix)))
        for (const entry of entries) {
          const full = path.join(dir, entry.name)
          const components = [...prefix, entry.name]
          const lstat = yield* fs.lstat(full).pipe(Effect.mapError(unreadable(components)))
          const type = entry.type === "Unknown" ? lstat.type : entry.type
          if (type === "Directory") {
            yield* walk(full, components)
          } else if (type === "File") {
            files.push({ path: components, length: Number(lstat.size), source: full })
          } else if (type === "SymbolicLink") {
            const target = yield* fs.realPath(full).pipe(Effect.option)
            if (Option.isNone(target)) {
              yield* skip(components, "DanglingLink")
            } else if (!inside(target.value)) {
              yield* skip(components, "LinkOutside")
            } else {
              const stat = yield* fs.stat(target.value).pipe(Effect.mapError(unreadable(components)))
              if (stat.type === "File") {
                files.push({ path: components, length: Number(stat.size), source: target.value })
              } else yield* skip(components, stat.type === "Directory" ? "LinkToFolder" : "LinkToSpecialFile")
            }
          } else {
            return yield* error(
              "NotRegular",
              `${shown(components)} is a ${
                type === "FIFO" ? "FIFO" : type.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`).trim()
              }, not a regular file`
            )
          }
        }
      })
    yield* walk(root, [])

    if (files.length === 0) return yield* error("NoData", `${input} holds no files; a torrent needs data`)
    const totalLength = files.reduce((n, file) => n + file.length, 0)
    if (totalLength === 0) return yield* error("NoData", `${input} holds only empty files; a torrent needs data`)
    return { name, multiFile: true, files: Create.sortFiles(files), totalLength, skipped } satisfies Source
  }
)

/**
 * The concatenated v1 piece hashes of the files and their v2 hashes, as
 * `version` asks, read in 4 MiB chunks into one buffer. A hybrid's v1 pieces
 * see each file but the last padded with zeros to a piece boundary.
 */
const hashPieces = Effect.fn("CreateTorrent.hashPieces")(
  function*<E, R>(
    input: string,
    source: Source,
    pieceLength: number,
    version: Create.Version,
    onProgress: Options<E, R>["onProgress"]
  ) {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const last = source.files.length - 1
    const pads = source.files.map((file, i) =>
      version === "hybrid" && i < last ? Create.padding(file.length, pieceLength) : 0
    )
    const hasher = version === "v2"
      ? undefined
      : new Create.PieceHasher(pieceLength, source.totalLength + pads.reduce((n, pad) => n + pad, 0))
    const tree = version === "v1" ? undefined : new Create.FileTreeHasher(pieceLength)
    const zeros = new Uint8Array(Math.max(...pads))
    const buffer = new Uint8Array(Math.min(readSize, source.totalLength))
    let bytesHashed = 0
    const report = onProgress === undefined
      ? Effect.void
      : Effect.suspend(() => onProgress({ bytesHashed, totalLength: source.totalLength }))
    const hashFile = (file: Entry) => {
      const shown = JSON.stringify(file.path.length === 0 ? input : path.join(input, ...file.path))
      const unreadable = (e: PlatformError.PlatformError) => error("Unreadable", `${shown}: ${failure(e)}`)
      const changed = error("Changed", `${shown} changed while it was hashed; try again once it is complete`)
      return Effect.gen(function*() {
        // Every source is a real path, so a file swapped for a link since the listing is refused, not followed.
        const handle = yield* fs.open(file.source, { flag: "r", noFollow: process.platform !== "win32" }).pipe(
          Effect.mapError(unreadable)
        )
        let left = file.length
        while (left > 0) {
          const n = yield* handle.read(left < buffer.length ? buffer.subarray(0, left) : buffer).pipe(
            Effect.mapError(unreadable)
          )
          if (n === 0) return yield* changed
          hasher?.update(buffer.subarray(0, n))
          tree?.update(buffer.subarray(0, n))
          bytesHashed += n
          left -= n
          yield* report
        }
        const after = yield* handle.stat.pipe(Effect.mapError(unreadable))
        if (Number(after.size) !== file.length) return yield* changed
      }).pipe(Effect.scoped)
    }
    yield* report
    yield* Effect.forEach(source.files, (file, i) =>
      Effect.gen(function*() {
        tree?.startFile(file.length)
        if (file.length > 0) yield* hashFile(file)
        hasher?.update(zeros.subarray(0, pads[i]))
      }), { discard: true })
    return { pieces: hasher?.finish() ?? new Uint8Array(0), v2: tree?.files }
  }
)
