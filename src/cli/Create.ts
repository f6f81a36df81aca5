/**
 * `effect-torrent create <path>`: makes a BitTorrent v1 .torrent of a file or
 * a folder with the library's `CreateTorrent.create` (which lists the files,
 * skips links it must not follow, hashes in 4 MiB reads and checks the
 * result; see src/torrent/CreateTorrent.ts). Here: the flags, checked before
 * anything is read; a warning on stderr for each link skipped; progress on
 * stderr (a redrawn line on a terminal, otherwise a line every 5 seconds);
 * and writing the .torrent, never over an existing file.
 */
import { Clock, Console, Effect, FileSystem, Option, Path } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Create from "../protocol/Create.ts"
import * as Magnet from "../protocol/Magnet.ts"
import type * as Metainfo from "../protocol/Metainfo.ts"
import * as CreateTorrent from "../torrent/CreateTorrent.ts"
import * as Format from "./Format.ts"
import * as Usage from "./Usage.ts"

const error = (problem: Create.CreateProblem, detail: string) => new Create.CreateError({ problem, detail })

const warn = (text: string) => Console.error(`effect-torrent: warning: ${text}`)

/** The warning for a link left out of the torrent (`input` as given, the link's path below it). */
const skippedWarning = (path: Path.Path, input: string, skipped: CreateTorrent.Skipped) => {
  const shown = Format.name(JSON.stringify(path.join(input, ...skipped.path)))
  switch (skipped.reason) {
    case "DanglingLink":
      return `skipping ${shown}: a dangling symbolic link`
    case "LinkOutside":
      return `skipping ${shown}: a symbolic link pointing outside ${Format.name(JSON.stringify(input))}`
    case "LinkToFolder":
      return `skipping ${shown}: a symbolic link to a folder`
    case "LinkToSpecialFile":
      return `skipping ${shown}: a symbolic link to a special file`
  }
}

/** Reports hashing progress on stderr: a redrawn line on a terminal, a line every 5 seconds otherwise. */
const makeProgress = () => {
  const tty = process.stderr.isTTY === true
  let last = -Infinity
  let lastText = ""
  const text = ({ bytesHashed, totalLength }: CreateTorrent.Progress) =>
    `hashing ${(bytesHashed / totalLength * 100).toFixed(1).padStart(5)}%  ${Format.bytes(bytesHashed)} of ${
      Format.bytes(totalLength)
    }`
  const report = (progress: CreateTorrent.Progress) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (last === -Infinity && !tty) last = now // off a terminal, the first line comes after 5 seconds
      if (now - last < (tty ? 100 : 5000)) return Effect.void
      last = now
      const line = text(progress)
      if (line === lastText) return Effect.void
      lastText = line
      return tty ? Effect.sync(() => process.stderr.write(`\r\x1b[2K${line}`)) : Console.error(line)
    })
  const clear = tty ? Effect.sync(() => lastText !== "" && process.stderr.write("\r\x1b[2K")) : Effect.void
  return { report, clear }
}

/** The flags that say what torrent to make (shared with `effect-torrent remote create`). */
export const flags = {
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
  v2: Flag.Boolean("v2").pipe(
    Flag.withDescription("make a BitTorrent v2-only torrent (BEP 52: SHA-256 Merkle trees; v2 clients only)"),
    Flag.withDefault(false)
  ),
  hybrid: Flag.Boolean("hybrid").pipe(
    Flag.withDescription("make a hybrid torrent (BEP 52: v1 and v2 hashes, for every client)"),
    Flag.withDefault(false)
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
}

interface FlagValues {
  readonly path: string
  readonly tracker: ReadonlyArray<string>
  readonly output: Option.Option<string>
  readonly pieceLength: Option.Option<string>
  readonly v2: boolean
  readonly hybrid: boolean
  readonly private: boolean
  readonly comment: Option.Option<string>
  readonly webSeed: ReadonlyArray<string>
}

/**
 * The flags checked before anything is read or sent (`command` names the
 * command in a usage error): the torrent's options, and the .torrent file
 * to write, which must not exist yet.
 */
export const parse = Effect.fnUntraced(function*(input: FlagValues, command: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const pieceLength = Option.isSome(input.pieceLength)
    ? yield* Effect.fromResult(Create.parsePieceLength(input.pieceLength.value))
    : undefined
  yield* Effect.fromResult(Create.checkUrls(input.tracker, input.webSeed))
  if (input.v2 && input.hybrid) {
    return yield* new Usage.UsageError({
      detail: "--v2 and --hybrid: give one (--hybrid already holds the v2 hashes)",
      command
    })
  }
  const output = Option.getOrElse(input.output, () => `${path.basename(path.resolve(input.path))}.torrent`)
  if (yield* fs.exists(output).pipe(Effect.orElseSucceed(() => false))) return yield* outputExists(output)
  return {
    output,
    options: {
      pieceLength,
      trackers: input.tracker,
      webSeeds: input.webSeed,
      version: input.v2 ? "v2" as const : input.hybrid ? "hybrid" as const : "v1" as const,
      private: input.private,
      comment: Option.getOrUndefined(input.comment)
    }
  }
})

const outputExists = (output: string) => error("OutputExists", `${output} already exists; not overwriting it`)

/** Writes the .torrent to `output` and prints what it is. */
export const write = Effect.fnUntraced(function*(output: string, bytes: Uint8Array, meta: Metainfo.Metainfo) {
  const fs = yield* FileSystem.FileSystem
  // "wx": fails if the file appeared meanwhile, so nothing is ever overwritten.
  yield* fs.writeFile(output, bytes, { flag: "wx" }).pipe(
    Effect.mapError((e) =>
      e.reason._tag === "AlreadyExists"
        ? outputExists(output)
        : error("Write", `cannot write ${output}: ${Format.failure(e)}`)
    )
  )
  const files = meta.files.filter((file) => !file.padding)
  const size = files.reduce((n, file) => n + file.length, 0)
  yield* Console.log(Format.printableLines([
    `created:     ${output}`,
    `name:        ${meta.name}`,
    ...Format.infoHashLines(meta),
    `size:        ${Format.bytes(size)} (${size} bytes) in ${files.length} file${files.length === 1 ? "" : "s"}`,
    `pieces:      ${meta.pieceCount} × ${Format.bytes(meta.pieceLength)}`,
    `magnet:      ${Magnet.format(Magnet.fromMetainfo(meta))}`
  ]))
})

export const command = Command.make(
  "create",
  {
    path: Argument.String("path").pipe(Argument.withDescription("the file or folder to make a torrent of")),
    ...flags
  },
  Effect.fn("Create.run")(function*(input) {
    const path = yield* Path.Path
    const { options, output } = yield* parse(input, "effect-torrent create")
    const progress = makeProgress()
    const { bytes, meta } = yield* CreateTorrent.create(input.path, {
      ...options,
      onProgress: progress.report,
      onSkip: (skipped) => warn(skippedWarning(path, input.path, skipped))
    }).pipe(Effect.ensuring(progress.clear))
    yield* write(output, bytes, meta)
  })
).pipe(Command.withDescription("Make a .torrent (BitTorrent v1, v2 or hybrid) of a file or folder"))
