/**
 * `effect-torrent <file.torrent | magnet>...`: download (and optionally seed)
 * torrents, and `effect-torrent seed <file.torrent>`.
 *
 * Everything the user gave is checked before anything starts: flags (one
 * line each, exit 2), the torrents, the download folder, a magnet's ways to
 * find peers and, for `seed`, that the data is there (exit 1). Then the
 * torrents run with the progress display (or `--json` lines, or nothing with
 * `--quiet`); at the end comes a summary line per torrent and one final
 * line: done, or how to resume after Ctrl-C.
 */
import { Cause, Clock, Effect, Exit, FileSystem, Option, Path, References, type Scope } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type * as Encryption from "../peer/Encryption.ts"
import type * as Utp from "../peer/Utp.ts"
import type * as InfoHash from "../protocol/InfoHash.ts"
import * as Magnet from "../protocol/Magnet.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import type { TorrentHandle } from "../TorrentManager.ts"
import * as Display from "./Display.ts"
import * as Format from "./Format.ts"
import * as HeapSize from "./HeapSize.ts"
import * as Input from "./Input.ts"
import * as OnDone from "./OnDone.ts"
import { Screen } from "./Screen.ts"
import * as Usage from "./Usage.ts"

export const flags = {
  torrents: Argument.String("torrent").pipe(
    Argument.withDescription(".torrent files or magnet links (quoted) to download"),
    Argument.variadic({ min: 1 })
  ),
  out: Flag.String("out").pipe(
    Flag.withAlias("o"),
    Flag.withMetavar("DIR"),
    Flag.withDescription("download folder, made if missing (default: the current folder)"),
    Flag.withDefault(".")
  ),
  maxPeers: Flag.Int("max-peers").pipe(
    Flag.withMetavar("N"),
    Usage.range(1, 100_000, "a number of peers from 1 to 100000"),
    Flag.withDescription("most connections per torrent (default: 50)"),
    Flag.withDefault(50)
  ),
  port: Flag.Int("port").pipe(
    Flag.withMetavar("PORT"),
    Usage.range(0, 65_535, "a port from 1 to 65535, or 0 for any free port"),
    Flag.withDescription("TCP port to listen on for peers; the next free one if taken, 0 for any (default: 6881)"),
    Flag.withDefault(6881)
  ),
  select: Flag.String("select").pipe(
    Flag.withMetavar("0,2,..."),
    Flag.withDescription("download only these files, by the indexes `info` shows (default: all)"),
    Flag.optional
  ),
  peer: Flag.String("peer").pipe(
    Flag.withMetavar("HOST:PORT"),
    Flag.withDescription("a peer to connect to (repeatable)"),
    Flag.atLeast(0)
  ),
  seed: Flag.Boolean("seed").pipe(
    Flag.withDescription("keep seeding after the download completes"),
    Flag.withDefault(false)
  ),
  seedRatio: Flag.Finite("seed-ratio").pipe(
    Flag.withMetavar("R"),
    Usage.range(0, 1e6, "a ratio of 0 or more"),
    Flag.withDescription("with --seed: stop once uploaded / size reaches R (default: never)"),
    Flag.optional
  ),
  seedTime: Flag.Finite("seed-time").pipe(
    Flag.withMetavar("MINUTES"),
    Usage.range(0, 1e9, "a number of minutes, 0 or more"),
    Flag.withDescription("with --seed: stop after this many minutes (default: never)"),
    Flag.optional
  ),
  maxUpload: Flag.String("max-upload").pipe(
    Flag.withMetavar("RATE"),
    Flag.withDescription("upload limit in bytes/s, e.g. 500K or 2M (default: none)"),
    Flag.optional
  ),
  maxDownload: Flag.String("max-download").pipe(
    Flag.withMetavar("RATE"),
    Flag.withDescription("download limit in bytes/s, e.g. 500K or 2M (default: none)"),
    Flag.optional
  ),
  onDone: Flag.String("on-done").pipe(
    Flag.withMetavar("CMD"),
    Flag.withDescription(
      "a shell command run when a torrent is complete and verified (written; synced to disk before exit), with ET_NAME, ET_INFO_HASH, ET_DIR and ET_SIZE set"
    ),
    Flag.optional
  ),
  quiet: Flag.Boolean("quiet").pipe(
    Flag.withAlias("q"),
    Flag.withDescription("no display or warnings: only the final line, and errors"),
    Flag.withDefault(false)
  ),
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("print one JSON progress object per torrent and second instead of the display"),
    Flag.withDefault(false)
  ),
  logLevel: Flag.Literals("log-level", ["error", "warn", "info", "debug"]).pipe(
    Flag.withMetavar("LEVEL"),
    Flag.withDescription("how much to log (default: warn; error with --quiet)"),
    Flag.optional
  ),
  saveTorrent: Flag.String("save-torrent").pipe(
    Flag.withMetavar("FILE"),
    Flag.withDescription("with a magnet link: write its metadata, once fetched, as a .torrent file"),
    Flag.optional
  ),
  noDht: Flag.Boolean("no-dht").pipe(Flag.withDescription("do not look for peers in the DHT"), Flag.withDefault(false)),
  noLpd: Flag.Boolean("no-lpd").pipe(
    Flag.withDescription("do not look for peers on the local network (BEP 14)"),
    Flag.withDefault(false)
  ),
  dhtBootstrap: Flag.String("dht-bootstrap").pipe(
    Flag.withMetavar("HOST:PORT"),
    Flag.withDescription("a DHT node to start from (repeatable; default: the well-known public routers)"),
    Flag.atLeast(0)
  ),
  // Listed here, not taken from Encryption: the engine loads only when a command runs (see `download`).
  encryption: Flag.Literals("encryption", ["prefer", "require", "disable"] satisfies Array<Encryption.Policy>).pipe(
    Flag.withMetavar("MODE"),
    Flag.withDescription(
      "encrypt peer connections (MSE/PE): prefer (handshake obfuscated; RC4 with peers that require it), " +
        "require (RC4 always), disable (default: prefer)"
    ),
    Flag.withDefault("prefer" as const)
  ),
  // Listed here too, not taken from Utp.
  utp: Flag.Literals("utp", ["prefer", "only", "disable"] satisfies Array<Utp.Policy>).pipe(
    Flag.withMetavar("MODE"),
    Flag.withDescription(
      "peers over uTP on the UDP port of --port: prefer (TCP too after 250 ms), only, disable (default: disable)"
    ),
    Flag.withDefault("disable" as const)
  )
}

export interface Options {
  readonly torrents: ReadonlyArray<string>
  readonly out: string
  readonly maxPeers: number
  readonly port: number
  readonly select: Option.Option<string>
  readonly peer: ReadonlyArray<string>
  readonly seed: boolean
  readonly seedRatio: Option.Option<number>
  readonly seedTime: Option.Option<number>
  readonly maxUpload: Option.Option<string>
  readonly maxDownload: Option.Option<string>
  readonly onDone: Option.Option<string>
  readonly quiet: boolean
  readonly json: boolean
  readonly logLevel: Option.Option<"error" | "warn" | "info" | "debug">
  readonly saveTorrent: Option.Option<string>
  readonly noDht: boolean
  readonly noLpd: boolean
  readonly dhtBootstrap: ReadonlyArray<string>
  /** Message stream encryption (default: prefer). */
  readonly encryption?: Encryption.Policy | undefined
  /** uTP (default: disable). */
  readonly utp?: Utp.Policy | undefined
  /** `seed`: the data must be under the folder already. */
  readonly dataRequired?: boolean
  /**
   * `serve`: runs once the torrents are added, in their scope, before the
   * display starts (so what it prints comes first).
   */
  readonly onStart?: (
    started: Started
  ) => Effect.Effect<void, Input.InputError, Scope.Scope | FileSystem.FileSystem | Path.Path | Screen>
}

/** The torrents running, for `onStart`. */
export interface Started {
  readonly handles: ReadonlyArray<TorrentHandle>
}

const logLevels = { error: "Error", warn: "Warn", info: "Info", debug: "Debug" } as const

const usage = (detail: string) => new Usage.UsageError({ detail })

export const parseAddresses = (flag: string, texts: ReadonlyArray<string>) =>
  Effect.forEach(texts, (text) => {
    const address = Magnet.parsePeer(text)
    return address === undefined
      ? Effect.fail(usage(`--${flag}: ${JSON.stringify(text)} is not HOST:PORT`))
      : Effect.succeed(address)
  })

/** "2M" → 2097152: a rate in bytes/s with an optional K/M/G (binary) suffix. */
export const parseRate = (flag: string, text: Option.Option<string>) => {
  if (Option.isNone(text)) return Effect.succeed(0)
  const match = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:\/s)?$/i.exec(text.value.trim())
  if (match === null) {
    return Effect.fail(usage(`--${flag}: ${JSON.stringify(text.value)} is not a rate like 500K or 2M`))
  }
  const scale = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2]!.toUpperCase() as "" | "K" | "M" | "G"]
  return Effect.succeed(Math.round(Number(match[1]) * scale))
}

const parseSelect = (text: string) =>
  text.trim() === ""
    ? Effect.fail(usage("--select: no file index given"))
    : Effect.forEach(text.split(","), (part) => {
      const n = Number(part.trim())
      return part.trim() !== "" && Number.isSafeInteger(n) && n >= 0
        ? Effect.succeed(n)
        : Effect.fail(usage(`--select: ${JSON.stringify(part)} is not a file index`))
    })

/** Fails when `selected` names a file the torrent does not have. */
const checkSelection = (meta: Metainfo.Metainfo, selected: ReadonlyArray<number> | undefined) => {
  const bad = selected?.find((i) => i >= meta.files.length)
  return bad === undefined
    ? Effect.void
    : Effect.fail(
      usage(`--select: ${Format.name(meta.name)} has no file ${bad} (its files are 0 to ${meta.files.length - 1})`)
    )
}

/**
 * The download folder, absolute, made if missing; a failure names `-o` and
 * the path given. Missing folders are made one at a time: Node's recursive
 * mkdir loops forever under a folder that refuses new entries (/proc).
 */
const prepareFolder = (out: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = path.resolve(out)
    const problem = (detail: string) => new Input.InputError({ input: `-o ${out}`, detail })
    const missing: Array<string> = []
    let folder = dir
    while (true) {
      const info = yield* fs.stat(folder).pipe(Effect.option)
      if (Option.isSome(info) && info.value.type !== "Directory") {
        return yield* problem(folder === dir ? "not a folder" : `${folder} is not a folder`)
      }
      if (Option.isSome(info) || path.dirname(folder) === folder) break
      missing.unshift(folder)
      folder = path.dirname(folder)
    }
    for (const folder of missing) {
      yield* fs.makeDirectory(folder).pipe(
        Effect.mapError((e) =>
          problem(`cannot make the folder${folder === dir ? "" : ` ${folder}`}: ${Format.failure(e)}`)
        )
      )
    }
    return dir
  })

/** `seed` with none of the torrent's files under the folder would quietly become a download: fail naming what was looked for. */
const requireData = (meta: Metainfo.Metainfo, dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const files = meta.files.filter((file) => !file.padding).map((file) => path.join(dir, ...file.path))
    const found = yield* Effect.filter(files, (file) => fs.exists(file).pipe(Effect.orElseSucceed(() => false)))
    if (found.length > 0) return
    const lookedFor = files.length === 1 ? files[0]! : `${path.join(dir, meta.name)}${path.sep} (${files.length} files)`
    return yield* new Input.InputError({
      input: "seed",
      detail: `no data of the torrent under ${dir}: looked for ${lookedFor}; give its folder with -o`
    })
  })

/** A magnet link with no tracker, no peer address, no --peer and no DHT would wait forever. */
const requireWayToPeers = (magnet: Magnet.Magnet, options: Options) =>
  magnet.trackers.length > 0 || magnet.peers.length > 0 || options.peer.length > 0 || !options.noDht
    ? Effect.void
    : Effect.fail(
      new Input.InputError({
        input: `magnet ${magnet.name ?? magnet.infoHash}`,
        detail: "no way to find peers: it names no tracker (tr) and no peer (x.pe), and --no-dht is set; " +
          "give --peer HOST:PORT or leave the DHT on"
      })
    )

export const run = Effect.fnUntraced(function*(options: Options) {
  if (options.quiet && options.json) return yield* usage("--quiet and --json do not go together")
  const level = Option.getOrElse(options.logLevel, () => (options.quiet ? "error" : "warn"))
  yield* download(options).pipe(Effect.provideService(References.MinimumLogLevel, logLevels[level]))
})

const download = Effect.fnUntraced(function*(options: Options) {
  const maxUploadRate = yield* parseRate("max-upload", options.maxUpload)
  const maxDownloadRate = yield* parseRate("max-download", options.maxDownload)
  const selected = Option.isSome(options.select) ? yield* parseSelect(options.select.value) : undefined
  const peers = yield* parseAddresses("peer", options.peer)
  const dhtBootstrap = yield* parseAddresses("dht-bootstrap", options.dhtBootstrap)
  const sources = yield* Effect.forEach(options.torrents, Input.load)
  if (sources.length > 1) yield* HeapSize.favourSize
  const magnets = sources.filter((source) => source._tag === "Magnet")
  if (Option.isSome(options.saveTorrent) && (sources.length !== 1 || magnets.length !== 1)) {
    return yield* usage("--save-torrent needs exactly one magnet link")
  }
  const fs = yield* FileSystem.FileSystem
  if (
    Option.isSome(options.saveTorrent) &&
    (yield* fs.exists(options.saveTorrent.value).pipe(Effect.orElseSucceed(() => false)))
  ) {
    return yield* usage(`--save-torrent: ${options.saveTorrent.value} exists already`)
  }
  for (const source of sources) {
    if (source._tag === "Torrent") yield* checkSelection(source.meta, selected)
    else yield* requireWayToPeers(source.magnet, options)
  }
  const dir = yield* prepareFolder(options.out)
  if (options.dataRequired === true) {
    for (const source of sources) if (source._tag === "Torrent") yield* requireData(source.meta, dir)
  }

  const screen = yield* Screen
  const started = yield* Clock.currentTimeMillis
  /** The torrents, once added; and when each completed (for the summary). */
  let handles: ReadonlyArray<TorrentHandle> = []
  const completedAt = new Map<InfoHash.InfoHash, number>()

  /** Until complete (and the hook ran), then with --seed until the seeding goal. */
  const follow = (handle: TorrentHandle, isMagnet: boolean) =>
    Effect.gen(function*() {
      // A magnet's files are known once its metadata is: only then can --select be checked.
      if (isMagnet && selected !== undefined) yield* checkSelection(yield* handle.metadata, selected)
      yield* handle.completed
      completedAt.set(handle.infoHash, yield* Clock.currentTimeMillis)
      if (Option.isSome(options.onDone)) {
        const p = yield* handle.progress.get
        yield* OnDone.run(options.onDone.value, {
          name: yield* handle.name,
          infoHash: handle.infoHash,
          dir,
          size: p.wanted
        })
      }
      if (options.seed) yield* handle.finished
    })

  // The engine is loaded here, once a command runs: `info`, `create` and the
  // help start without parsing (and holding) its code.
  const { TorrentManager } = yield* Effect.promise(() => import("../TorrentManager.ts"))
  const torrents = Effect.gen(function*() {
    const manager = yield* TorrentManager
    if (options.port !== 0 && manager.port !== options.port) {
      yield* Effect.logWarning(`port ${options.port} is taken: listening for peers on port ${manager.port} instead`)
    }
    handles = yield* Effect.forEach(
      sources,
      (source) =>
        manager.add(source._tag === "Torrent" ? source.meta : source.magnet, {
          selected,
          peers,
          seed: options.seed,
          seedRatio: Option.getOrUndefined(options.seedRatio),
          seedMillis: Option.getOrUndefined(Option.map(options.seedTime, (minutes) => minutes * 60_000))
        })
    )
    if (options.onStart !== undefined) yield* options.onStart({ handles })
    if (options.json) yield* Effect.forkScoped(Display.showJson(handles))
    else if (!options.quiet) yield* Effect.forkScoped(Display.show(handles))
    // Closing the scope stops the torrents first (finalizers run last-in first-out), so the display's last frame shows how they ended.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(handles, (handle) => manager.pause(handle.infoHash), { discard: true }).pipe(Effect.ignore)
    )
    yield* Effect.all([
      Effect.forEach(handles, (handle, i) => follow(handle, sources[i]!._tag === "Magnet"), {
        concurrency: "unbounded",
        discard: true
      }),
      Option.match(options.saveTorrent, { onNone: () => Effect.void, onSome: (file) => saveTorrent(handles[0]!, file) })
    ], { concurrency: "unbounded", discard: true })
  }).pipe(Effect.scoped)

  /** The summary and the final line, however it ended (a failure's own line comes after, from main). */
  const finish = (exit: Exit.Exit<unknown, unknown>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const ended = yield* Effect.forEach(
        handles,
        (handle) => Effect.all({ name: handle.name, progress: handle.progress.get })
      )
      if (!options.quiet && !options.json) {
        ended.forEach((t, i) => {
          const seconds = ((completedAt.get(handles[i]!.infoHash) ?? now) - started) / 1000
          screen.print(Display.summary(t.name, t.progress, seconds, screen.columns()), "stdout")
        })
      }
      const to = options.json ? "stderr" : "stdout"
      if (Exit.isSuccess(exit)) {
        screen.print(options.seed ? "done seeding" : "done: every torrent is complete and verified", to)
      } else if (Cause.hasInterruptsOnly(exit.cause)) screen.print(interrupted(ended.map((t) => t.progress)), to)
    })

  yield* torrents.pipe(
    Effect.provide(TorrentManager.layerNode({
      downloadDir: dir,
      maxPeers: options.maxPeers,
      port: options.port,
      maxUploadRate,
      maxDownloadRate,
      dht: !options.noDht,
      dhtBootstrap: dhtBootstrap.length > 0 ? dhtBootstrap : undefined,
      localDiscovery: !options.noLpd,
      encryption: options.encryption ?? "prefer",
      utp: options.utp ?? "disable"
    })),
    Effect.onExit((exit) => finish(exit))
  )
})

/** The line after Ctrl-C: what is saved, and that running the command again resumes. */
const interrupted = (ended: ReadonlyArray<{ readonly done: number; readonly wanted: number }>): string => {
  const done = ended.reduce((n, p) => n + p.done, 0)
  const wanted = ended.reduce((n, p) => n + p.wanted, 0)
  return done === wanted && wanted > 0
    ? "stopped: every torrent is complete"
    : `interrupted: ${Format.bytes(done)} of ${
      Format.bytes(wanted)
    } verified on disk; run the same command again to resume`
}

/** Writes the torrent's metadata as a .torrent once it is known with its piece layers (never over an existing file). */
const saveTorrent = (handle: TorrentHandle, file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const meta = yield* handle.wholeMetadata
    yield* fs.writeFile(file, Metainfo.encode(meta), { flag: "wx" }).pipe(
      Effect.mapError((error) =>
        new Input.InputError({ input: `--save-torrent ${file}`, detail: `cannot write it: ${Format.failure(error)}` })
      )
    )
    yield* Effect.logInfo(`metadata saved to ${file}`)
  })

/** `effect-torrent seed <file.torrent> [-o DIR]`: check the data under DIR (fetching what is missing) and seed it. */
export const seedCommand = Command.make(
  "seed",
  {
    torrent: Argument.String("torrent").pipe(Argument.withDescription("the .torrent file whose data to seed")),
    out: flags.out,
    maxPeers: flags.maxPeers,
    port: flags.port,
    peer: flags.peer,
    seedRatio: flags.seedRatio,
    seedTime: flags.seedTime,
    maxUpload: flags.maxUpload,
    onDone: flags.onDone,
    quiet: flags.quiet,
    json: flags.json,
    logLevel: flags.logLevel,
    noDht: flags.noDht,
    noLpd: flags.noLpd,
    dhtBootstrap: flags.dhtBootstrap,
    encryption: flags.encryption,
    utp: flags.utp
  },
  (input) =>
    run({
      ...input,
      torrents: [input.torrent],
      select: Option.none(),
      maxDownload: Option.none(),
      seed: true,
      saveTorrent: Option.none(),
      dataRequired: true
    })
).pipe(
  Command.withDescription("Check a torrent's data under the folder, fetch what is missing, and seed it"),
  Command.withExamples([
    { command: "effect-torrent seed movie.torrent -o ~/Videos", description: "seed what ~/Videos holds of it" },
    { command: "effect-torrent seed movie.torrent --seed-ratio 2", description: "until twice its size is uploaded" }
  ])
)
