/**
 * `effect-torrent create <path>`: makes a BitTorrent v1 .torrent of a file or
 * a folder.
 *
 * - A file gives a single-file torrent; a folder a multi-file one with every
 *   file below it (hidden and zero-length ones too), sorted component by
 *   component in byte order.
 * - Symbolic links inside the folder are never followed out of it: a link to
 *   a regular file inside the folder is included (under the link's name,
 *   read through the link); a link to a folder, a link pointing outside the
 *   folder and a dangling link are skipped with a warning on stderr. The path
 *   named on the command line may itself be a link. FIFOs, sockets and
 *   devices are refused.
 * - Pieces are hashed streaming through the files in 4 MiB reads (pieces span
 *   file boundaries); nothing holds a whole file. Progress goes to stderr: a
 *   redrawn line on a terminal, otherwise a line every 5 seconds.
 * - The torrent is read back with `Metainfo.decode` before it is written, and
 *   an existing output file is never overwritten.
 */
import { Clock, Console, Effect, FileSystem, Option, Path, type PlatformError, Result } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Create from "../protocol/Create.ts"
import * as Magnet from "../protocol/Magnet.ts"
import * as Format from "./Format.ts"

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
}

const error = (problem: Create.CreateProblem, detail: string) => new Create.CreateError({ problem, detail })

const warn = (text: string) => Console.error(`effect-torrent: warning: ${text}`)

/** The files of `input` (a file or a folder), in torrent order. */
const collect = Effect.fn("Create.collect")(function*(input: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const absolute = path.resolve(input)
  const name = path.basename(absolute)
  const info = yield* fs.stat(absolute).pipe(
    Effect.mapError((e) =>
      error(e.reason._tag === "NotFound" ? "Missing" : "Unreadable", `${input}: ${Format.failure(e)}`)
    )
  )
  const root = yield* fs.realPath(absolute).pipe(
    Effect.mapError((e) => error("Unreadable", `${input}: ${Format.failure(e)}`))
  )

  if (info.type === "File") {
    const length = Number(info.size)
    if (length === 0) return yield* error("NoData", `${input} is empty; a torrent needs data`)
    return { name, multiFile: false, files: [{ path: [], length, source: root }], totalLength: length } satisfies Source
  }
  if (info.type !== "Directory") return yield* error("NotRegular", `${input} is neither a file nor a folder`)

  const files: Array<Entry> = []
  const inside = (real: string) => real.startsWith(root.endsWith(path.sep) ? root : root + path.sep)
  // Names of files in the folder (perhaps from a download) go into warnings and errors printed for humans.
  const shown = (components: ReadonlyArray<string>) => Format.name(JSON.stringify(path.join(input, ...components)))
  const unreadable = (components: ReadonlyArray<string>) => (e: PlatformError.PlatformError) =>
    error("Unreadable", `${shown(components)}: ${Format.failure(e)}`)

  const walk = (dir: string, prefix: ReadonlyArray<string>): Effect.Effect<void, Create.CreateError> =>
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
            yield* warn(`skipping ${shown(components)}: a dangling symbolic link`)
            continue
          }
          if (!inside(target.value)) {
            yield* warn(
              `skipping ${shown(components)}: a symbolic link pointing outside ${Format.name(JSON.stringify(input))}`
            )
            continue
          }
          const stat = yield* fs.stat(target.value).pipe(Effect.mapError(unreadable(components)))
          if (stat.type === "File") files.push({ path: components, length: Number(stat.size), source: target.value })
          else {
            yield* warn(
              `skipping ${shown(components)}: a symbolic link to a ${
                stat.type === "Directory" ? "folder" : "special file"
              }`
            )
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
  return { name, multiFile: true, files: Create.sortFiles(files), totalLength } satisfies Source
})

/** Reports hashing progress on stderr: a redrawn line on a terminal, a line every 5 seconds otherwise. */
const makeProgress = (total: number) => {
  const tty = process.stderr.isTTY === true
  let last = -Infinity
  let lastText = ""
  const text = (done: number) =>
    `hashing ${(done / total * 100).toFixed(1).padStart(5)}%  ${Format.bytes(done)} of ${Format.bytes(total)}`
  const report = (done: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (last === -Infinity && !tty) last = now // off a terminal, the first line comes after 5 seconds
      if (now - last < (tty ? 100 : 5000)) return Effect.void
      last = now
      const line = text(done)
      if (line === lastText) return Effect.void
      lastText = line
      return tty ? Effect.sync(() => process.stderr.write(`\r\x1b[2K${line}`)) : Console.error(line)
    })
  const clear = tty ? Effect.sync(() => lastText !== "" && process.stderr.write("\r\x1b[2K")) : Effect.void
  return { report, clear }
}

/** The concatenated piece hashes of the files, read in 4 MiB chunks. */
const hashPieces = Effect.fn("Create.hashPieces")(function*(input: string, source: Source, pieceLength: number) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const hasher = new Create.PieceHasher(pieceLength, source.totalLength)
  const buffer = new Uint8Array(Math.min(readSize, source.totalLength))
  const progress = makeProgress(source.totalLength)
  const hashFile = (file: Entry) => {
    const shown = Format.name(JSON.stringify(file.path.length === 0 ? input : path.join(input, ...file.path)))
    const unreadable = (e: PlatformError.PlatformError) => error("Unreadable", `${shown}: ${Format.failure(e)}`)
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
        hasher.update(buffer.subarray(0, n))
        left -= n
        yield* progress.report(hasher.bytesHashed)
      }
      const after = yield* handle.stat.pipe(Effect.mapError(unreadable))
      if (Number(after.size) !== file.length) return yield* changed
    }).pipe(Effect.scoped)
  }
  yield* Effect.forEach(source.files, (file) => (file.length === 0 ? Effect.void : hashFile(file)), { discard: true })
    .pipe(
      Effect.ensuring(progress.clear)
    )
  return hasher.finish()
})

export const command = Command.make(
  "create",
  {
    path: Argument.String("path").pipe(Argument.withDescription("the file or folder to make a torrent of")),
    tracker: Flag.String("tracker").pipe(
      Flag.withMetavar("URL"),
      Flag.withAlias("t"),
      Flag.withDescription("a tracker announce URL, each in its own tier (repeatable)"),
      Flag.atLeast(0)
    ),
    output: Flag.String("output").pipe(
      Flag.withMetavar("FILE"),
      Flag.withAlias("o"),
      Flag.withDescription("the .torrent file to write (default: <name>.torrent here); never overwritten"),
      Flag.optional
    ),
    pieceLength: Flag.String("piece-length").pipe(
      Flag.withMetavar("BYTES"),
      Flag.withDescription(
        "bytes per piece: a power of two from 16384 (16K) to 64M (default: chosen for 1000–2000 pieces)"
      ),
      Flag.optional
    ),
    private: Flag.Boolean("private").pipe(
      Flag.withDescription("mark the torrent private (BEP 27: trackers only, no DHT or PEX)"),
      Flag.withDefault(false)
    ),
    comment: Flag.String("comment").pipe(
      Flag.withMetavar("TEXT"),
      Flag.withDescription("a comment stored in the torrent"),
      Flag.optional
    ),
    webSeed: Flag.String("web-seed").pipe(
      Flag.withMetavar("URL"),
      Flag.withDescription("a web seed URL (BEP 19, repeatable)"),
      Flag.atLeast(0)
    )
  },
  Effect.fn("Create.run")(function*(input) {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const given = Option.isSome(input.pieceLength)
      ? yield* Effect.fromResult(Create.parsePieceLength(input.pieceLength.value))
      : undefined
    yield* Effect.fromResult(Create.checkUrls(input.tracker, input.webSeed))

    const output = Option.getOrElse(input.output, () => `${path.basename(path.resolve(input.path))}.torrent`)
    const exists = () => error("OutputExists", `${output} already exists; not overwriting it`)
    if (yield* fs.exists(output).pipe(Effect.orElseSucceed(() => false))) return yield* exists()
    const source = yield* collect(input.path)

    const pieceLength = given ?? Create.autoPieceLength(source.totalLength)
    const pieces = yield* hashPieces(input.path, source, pieceLength)
    const now = yield* Clock.currentTimeMillis
    const created = Create.encode({
      name: source.name,
      multiFile: source.multiFile,
      files: source.files,
      pieceLength,
      pieces,
      trackers: input.tracker,
      webSeeds: input.webSeed,
      private: input.private,
      comment: Option.getOrUndefined(input.comment),
      createdBy: Create.createdBy,
      creationDate: Math.floor(now / 1000)
    })
    if (Result.isFailure(created)) return yield* created.failure
    const { bytes, meta } = created.success
    // "wx": fails if the file appeared meanwhile, so nothing is ever overwritten.
    yield* fs.writeFile(output, bytes, { flag: "wx" }).pipe(
      Effect.mapError((e) =>
        e.reason._tag === "AlreadyExists" ? exists() : error("Write", `cannot write ${output}: ${Format.failure(e)}`)
      )
    )
    yield* Console.log(Format.printableLines([
      `created:     ${output}`,
      `name:        ${meta.name}`,
      `info-hash:   ${meta.infoHash}`,
      `size:        ${Format.bytes(meta.length)} (${meta.length} bytes) in ${meta.files.length} file${
        meta.files.length === 1 ? "" : "s"
      }`,
      `pieces:      ${meta.pieceCount} × ${Format.bytes(meta.pieceLength)}`,
      `magnet:      ${Magnet.format(Magnet.fromMetainfo(meta))}`
    ]))
  })
).pipe(Command.withDescription("Make a .torrent (BitTorrent v1) of a file or folder"))
