/** `effect-torrent <file.torrent | magnet>...`: download (and optionally seed) torrents. */
import { Console, Effect, Fiber, FileSystem, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Magnet from "../protocol/Magnet.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import { type TorrentHandle, TorrentManager } from "../TorrentManager.ts"
import * as Display from "./Display.ts"
import * as Format from "./Format.ts"
import * as Input from "./Input.ts"

export const flags = {
  torrents: Argument.String("torrent").pipe(
    Argument.withDescription(".torrent files or magnet links to download"),
    Argument.variadic({ min: 1 })
  ),
  out: Flag.String("out").pipe(Flag.withAlias("o"), Flag.withDescription("download folder"), Flag.withDefault(".")),
  maxPeers: Flag.Int("max-peers").pipe(Flag.withDescription("most connections per torrent"), Flag.withDefault(50)),
  port: Flag.Int("port").pipe(Flag.withDescription("TCP port to announce"), Flag.withDefault(6881)),
  select: Flag.String("select").pipe(
    Flag.withDescription("comma-separated file indexes to download (see `info`); default all"),
    Flag.optional
  ),
  peer: Flag.String("peer").pipe(Flag.withDescription("a peer to connect to, host:port (repeatable)"), Flag.atLeast(0)),
  seed: Flag.Boolean("seed").pipe(Flag.withDescription("keep seeding after the download completes"), Flag.withDefault(false)),
  seedRatio: Flag.Finite("seed-ratio").pipe(
    Flag.withDescription("with --seed: stop once uploaded / size reaches this ratio"),
    Flag.optional
  ),
  seedTime: Flag.Finite("seed-time").pipe(
    Flag.withDescription("with --seed: stop after this many minutes"),
    Flag.optional
  ),
  maxUpload: Flag.String("max-upload").pipe(
    Flag.withDescription("upload limit in bytes/s, e.g. 500K or 2M (default: unlimited)"),
    Flag.optional
  ),
  maxDownload: Flag.String("max-download").pipe(
    Flag.withDescription("download limit in bytes/s, e.g. 500K or 2M (default: unlimited)"),
    Flag.optional
  ),
  quiet: Flag.Boolean("quiet").pipe(Flag.withDescription("no progress display"), Flag.withDefault(false)),
  saveTorrent: Flag.String("save-torrent").pipe(
    Flag.withDescription("with a magnet link: write its metadata, once fetched, as a .torrent file here"),
    Flag.optional
  ),
  noDht: Flag.Boolean("no-dht").pipe(Flag.withDescription("do not look for peers in the DHT"), Flag.withDefault(false)),
  noLpd: Flag.Boolean("no-lpd").pipe(
    Flag.withDescription("do not announce torrents on the local network nor listen for others there (BEP 14)"),
    Flag.withDefault(false)
  ),
  dhtBootstrap: Flag.String("dht-bootstrap").pipe(
    Flag.withDescription("a DHT node to start from, host:port (repeatable; default: the well-known public routers)"),
    Flag.atLeast(0)
  )
}

export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", { detail: Schema.String }) {
  override get message() {
    return this.detail
  }
}

const parseAddresses = (flag: string, texts: ReadonlyArray<string>) =>
  Effect.forEach(texts, (text) => {
    const address = Magnet.parsePeer(text)
    return address === undefined
      ? Effect.fail(new UsageError({ detail: `--${flag}: ${JSON.stringify(text)} is not host:port` }))
      : Effect.succeed(address)
  })

/** "2M" → 2097152: a rate in bytes/s with an optional K/M/G (binary) suffix. */
export const parseRate = (flag: string, text: Option.Option<string>) => {
  if (Option.isNone(text)) return Effect.succeed(0)
  const match = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:\/s)?$/i.exec(text.value.trim())
  if (match === null) return Effect.fail(new UsageError({ detail: `--${flag}: ${JSON.stringify(text.value)} is not a rate like 500K or 2M` }))
  const scale = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2]!.toUpperCase() as "" | "K" | "M" | "G"]
  return Effect.succeed(Math.round(Number(match[1]) * scale))
}

const parseSelect = (text: string) =>
  Effect.forEach(text.split(","), (part) => {
    const n = Number(part.trim())
    return Number.isInteger(n) && n >= 0 ? Effect.succeed(n) : Effect.fail(new UsageError({ detail: `--select: ${JSON.stringify(part)} is not a file index` }))
  })

export const run = Effect.fnUntraced(function*(input: {
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
  readonly quiet: boolean
  readonly saveTorrent: Option.Option<string>
  readonly noDht: boolean
  readonly noLpd: boolean
  readonly dhtBootstrap: ReadonlyArray<string>
}) {
  const maxUploadRate = yield* parseRate("max-upload", input.maxUpload)
  const maxDownloadRate = yield* parseRate("max-download", input.maxDownload)
  const selected = Option.isSome(input.select) ? yield* parseSelect(input.select.value) : undefined
  const peers = yield* parseAddresses("peer", input.peer)
  const dhtBootstrap = yield* parseAddresses("dht-bootstrap", input.dhtBootstrap)
  const sources = yield* Effect.forEach(input.torrents, Input.load)
  // A magnet's file list is unknown until its metadata is in; --select indexes beyond it select nothing.
  for (const source of sources) {
    if (source._tag !== "Torrent") continue
    const bad = selected?.find((i) => i >= source.meta.files.length)
    if (bad !== undefined) return yield* new UsageError({ detail: `--select: ${Format.name(source.meta.name)} has no file ${bad}` })
  }
  const magnets = sources.filter((source) => source._tag === "Magnet")
  if (Option.isSome(input.saveTorrent) && (sources.length !== 1 || magnets.length !== 1)) {
    return yield* new UsageError({ detail: "--save-torrent needs exactly one magnet link" })
  }
  if (Option.isSome(input.saveTorrent) && (yield* (yield* FileSystem.FileSystem).exists(input.saveTorrent.value).pipe(Effect.orElseSucceed(() => false)))) {
    return yield* new UsageError({ detail: `--save-torrent: ${input.saveTorrent.value} exists already` })
  }

  const program = Effect.gen(function*() {
    const manager = yield* TorrentManager
    const handles = yield* Effect.forEach(sources, (source) => manager.add(source._tag === "Torrent" ? source.meta : source.magnet, {
      selected,
      peers,
      seed: input.seed,
      seedRatio: Option.getOrUndefined(input.seedRatio),
      seedMillis: Option.getOrUndefined(Option.map(input.seedTime, (minutes) => minutes * 60_000))
    }))
    const saved = yield* Effect.forkScoped(Option.match(input.saveTorrent, {
      onNone: () => Effect.void,
      onSome: (file) => saveTorrent(handles[0]!, file)
    }))
    // Seeding runs until interrupted or the ratio is reached; downloading until complete.
    const all = Effect.forEach(handles, (h) => input.seed ? h.finished : h.completed, {
      concurrency: "unbounded",
      discard: true
    })
    if (input.quiet) yield* all
    else yield* Effect.raceFirst(all, Display.show(handles).pipe(Effect.andThen(Effect.never)))
    yield* Fiber.join(saved)
  }).pipe(Effect.scoped)
  yield* program.pipe(
    Effect.provide(TorrentManager.layerNode({
      downloadDir: input.out,
      maxPeers: input.maxPeers,
      port: input.port,
      maxUploadRate,
      maxDownloadRate,
      dht: !input.noDht,
      dhtBootstrap: dhtBootstrap.length > 0 ? dhtBootstrap : undefined,
      localDiscovery: !input.noLpd
    }))
  )
  if (!input.quiet) yield* Console.log(input.seed ? "done seeding" : "done: every torrent is complete and verified")
})

/** Writes the torrent's metadata as a .torrent once it is known (never over an existing file). */
const saveTorrent = (handle: TorrentHandle, file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const meta = yield* handle.metadata
    yield* fs.writeFile(file, Metainfo.encode(meta), { flag: "wx" }).pipe(
      Effect.mapError((error) => new UsageError({ detail: `--save-torrent: cannot write ${file}: ${error.message}` }))
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
    quiet: flags.quiet,
    noDht: flags.noDht,
    noLpd: flags.noLpd,
    dhtBootstrap: flags.dhtBootstrap
  },
  (input) =>
    run({
      ...input,
      torrents: [input.torrent],
      select: Option.none(),
      maxDownload: Option.none(),
      seed: true,
      saveTorrent: Option.none()
    })
).pipe(Command.withDescription("Verify a torrent's data and seed it, showing peers and upload rate"))
