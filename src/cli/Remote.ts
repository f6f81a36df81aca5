/**
 * `effect-torrent remote <command>`: drives a running daemon through its
 * typed API client (`daemon/Client`): list, add, info, stop (pause),
 * start (resume), remove, limit, create (a torrent of a path on the
 * daemon's computer, made there and written here, with `create`'s flags).
 * The client is loaded only when a command runs.
 */
import { Console, Effect, FileSystem, Option, Result } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { Client } from "../daemon/Client.ts"
import * as Magnet from "../protocol/Magnet.ts"
import * as Metainfo from "../protocol/Metainfo.ts"
import * as Create from "./Create.ts"
import * as Download from "./Download.ts"
import * as Format from "./Format.ts"
import * as Input from "./Input.ts"

const connection = {
  url: Flag.String("url").pipe(
    Flag.withMetavar("URL"),
    Flag.withDescription("the daemon's address (default: http://127.0.0.1:9091/)"),
    Flag.withDefault("http://127.0.0.1:9091/")
  ),
  auth: Flag.String("auth").pipe(
    Flag.withMetavar("USER:PASS"),
    Flag.withDescription("the daemon's user and password, if it has one"),
    Flag.optional
  )
}

const id = Argument.String("id").pipe(Argument.withDescription("the torrent's number (as list shows) or info-hash"))

/** Runs `f` with a client of the daemon; what the daemon refuses, or not reaching it, is one line. */
const withClient = <A, E extends { readonly _tag: string; readonly message: string }>(
  options: { readonly url: string; readonly auth: Option.Option<string> },
  f: (client: Client) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const { make } = yield* Effect.promise(() => import("../daemon/Client.ts"))
    const client = yield* make(options.url, Option.getOrUndefined(options.auth))
    return yield* f(client)
  }).pipe(
    Effect.mapError((error) =>
      new Input.InputError({
        input: ["TorrentNotFound", "BadInput", "UrlFailed", "CreateFailed", "DaemonFailure"].includes(error._tag)
          ? "the daemon"
          : `--url ${options.url}`,
        detail: error._tag === "HttpClientError" ? `cannot reach the daemon: ${error.message}` : error.message
      })
    )
  )

const percent = (done: number | undefined, wanted: number | undefined) =>
  wanted === undefined || wanted === 0 ? "  n/a" : `${((100 * (done ?? 0)) / wanted).toFixed(1).padStart(5)}%`

const list = Command.make("list", connection, (options) =>
  withClient(options, (client) =>
    Effect.gen(function*() {
      const torrents = yield* client.torrents.list({ query: {} })
      for (const t of torrents) {
        yield* Console.log(
          `${String(t.id).padStart(4)}  ${percent(t.done, t.wanted)}  ${
            (t.paused === true ? "paused" : t.state ?? "").padEnd(17)
          } ↓${Format.rate(t.downloadRate ?? 0).padStart(11)} ↑${Format.rate(t.uploadRate ?? 0).padStart(11)}  ${
            Format.name(t.name ?? t.infoHash)
          }`
        )
      }
    }))).pipe(Command.withDescription("List the daemon's torrents: number, percent done, state, rates, name"))

const add = Command.make("add", {
  ...connection,
  torrent: Argument.String("torrent").pipe(Argument.withDescription("a .torrent file (read here) or a magnet link")),
  out: Flag.String("out").pipe(
    Flag.withAlias("o"),
    Flag.withMetavar("DIR"),
    Flag.withDescription("its folder on the daemon's computer (default: the daemon's)"),
    Flag.optional
  ),
  paused: Flag.Boolean("paused").pipe(Flag.withDescription("add it without starting it"), Flag.withDefault(false))
}, (options) =>
  Effect.gen(function*() {
    const source = Magnet.isMagnet(options.torrent)
      ? { magnet: options.torrent }
      : {
        torrent: Buffer.from(
          yield* (yield* FileSystem.FileSystem).readFile(options.torrent).pipe(
            Effect.mapError((error) => new Input.InputError({ input: options.torrent, detail: Format.failure(error) }))
          )
        ).toString("base64")
      }
    const added = yield* withClient(options, (client) =>
      client.torrents.add({
        payload: {
          ...source,
          paused: options.paused,
          ...(Option.isSome(options.out) ? { downloadDir: options.out.value } : {})
        }
      }))
    yield* Console.log(`added ${added.id}: ${Format.name(added.name ?? added.infoHash)}`)
  })).pipe(Command.withDescription("Add a .torrent file or a magnet link to the daemon"))

const info = Command.make(
  "info",
  { ...connection, id },
  (options) =>
    withClient(options, (client) =>
      Effect.gen(function*() {
        const t = yield* client.torrents.get({ params: { id: options.id } })
        yield* Console.log([
          `name:       ${Format.name(t.name ?? "")}`,
          `number:     ${t.id}`,
          `info-hash:  ${t.infoHash}`,
          `state:      ${t.paused === true ? "paused" : t.state}`,
          `done:       ${Format.bytes(t.done ?? 0)} of ${Format.bytes(t.wanted ?? 0)}`,
          `folder:     ${t.downloadDir}`,
          `limits:     ↓${Format.rate(t.limits?.download ?? 0)} ↑${Format.rate(t.limits?.upload ?? 0)} (0: none)`,
          `files (${t.files.length}):`,
          ...t.files.map((f) =>
            `  ${f.index}  ${f.priority.padEnd(6)} ${percent(f.done, f.length)}  ${Format.name(f.path)}`
          )
        ].join("\n"))
      }))
).pipe(Command.withDescription("One torrent of the daemon, with its files"))

const pause = Command.make(
  "stop",
  { ...connection, id },
  (options) => withClient(options, (client) => client.torrents.pause({ params: { id: options.id } }))
).pipe(
  Command.withDescription("Pause a torrent (it stays paused across restarts of the daemon)")
)

const resume = Command.make(
  "start",
  { ...connection, id },
  (options) => withClient(options, (client) => client.torrents.resume({ params: { id: options.id } }))
).pipe(
  Command.withDescription("Start a paused torrent again")
)

const remove = Command.make("remove", {
  ...connection,
  id,
  delete: Flag.Boolean("delete").pipe(Flag.withDescription("delete its files too"), Flag.withDefault(false))
}, (options) =>
  withClient(options, (client) =>
    client.torrents.remove({
      params: { id: options.id },
      query: { deleteFiles: options.delete ? "true" : "false" }
    }))).pipe(Command.withDescription("Remove a torrent from the daemon (its files stay, unless --delete)"))

const limit = Command.make("limit", {
  ...connection,
  id: Flag.String("id").pipe(
    Flag.withMetavar("ID"),
    Flag.withDescription("this torrent's limits (default: the global ones)"),
    Flag.optional
  ),
  maxUpload: Download.flags.maxUpload,
  maxDownload: Download.flags.maxDownload
}, (options) =>
  Effect.gen(function*() {
    const limits = {
      upload: yield* Download.parseRate("max-upload", options.maxUpload),
      download: yield* Download.parseRate("max-download", options.maxDownload)
    }
    yield* withClient(options, (client) =>
      Option.isSome(options.id)
        ? client.torrents.setLimits({ params: { id: options.id.value }, payload: limits })
        : client.session.setLimits({ payload: limits }))
  })).pipe(Command.withDescription("Set the upload and download limits (absent: none), globally or of one torrent"))

const create = Command.make("create", {
  ...connection,
  path: Argument.String("path").pipe(
    Argument.withDescription("the file or folder to make a torrent of, an absolute path on the daemon's computer")
  ),
  ...Create.flags,
  seed: Flag.Boolean("seed").pipe(
    Flag.withDescription("the daemon seeds it too, from where it lies"),
    Flag.withDefault(false)
  )
}, (input) =>
  Effect.gen(function*() {
    const { options, output } = yield* Create.parse(input, "effect-torrent remote create")
    const created = yield* withClient(input, (client) =>
      client.create.create({
        payload: {
          path: input.path,
          trackers: options.trackers,
          webSeeds: options.webSeeds,
          version: options.version,
          private: options.private,
          seed: input.seed,
          ...(options.pieceLength === undefined ? {} : { pieceLength: options.pieceLength }),
          ...(options.comment === undefined ? {} : { comment: options.comment })
        }
      }))
    const bytes = Buffer.from(created.torrent, "base64")
    const meta = Metainfo.decode(bytes)
    if (Result.isFailure(meta)) {
      return yield* new Input.InputError({
        input: "the daemon",
        detail: `sent a bad .torrent: ${meta.failure.message}`
      })
    }
    yield* Create.write(output, bytes, meta.success)
    if (created.added !== undefined) yield* Console.log(`seeding as ${created.added.id}`)
  })).pipe(
    Command.withDescription("Make a .torrent of a file or folder on the daemon's computer, written here")
  )

export const command = Command.make("remote").pipe(
  Command.withDescription("Drive a running effect-torrent daemon over its HTTP API"),
  Command.withSubcommands([list, add, info, pause, resume, remove, limit, create]),
  Command.withExamples([
    { command: "effect-torrent remote list", description: "the torrents of the daemon on 127.0.0.1:9091" },
    { command: "effect-torrent remote add movie.torrent -o /srv/films", description: "add one into a folder" },
    { command: "effect-torrent remote limit --max-download 2M", description: "at most 2 MiB/s in all" }
  ])
)
