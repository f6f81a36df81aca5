/**
 * `effect-torrent serve <file.torrent | magnet>`: downloads the torrent as
 * the download command does and serves it over HTTP (see
 * `http/TorrentServer`) until interrupted, seeding once complete. Its first
 * line on stdout is the address: `serving on http://127.0.0.1:8000/`.
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Download from "./Download.ts"
import * as Input from "./Input.ts"
import { Screen } from "./Screen.ts"
import * as Usage from "./Usage.ts"

const flags = {
  torrent: Argument.String("torrent").pipe(
    Argument.withDescription("the .torrent file or magnet link (quoted) to download and serve")
  ),
  httpPort: Flag.Int("http-port").pipe(
    Flag.withMetavar("PORT"),
    Usage.range(0, 65_535, "a port from 1 to 65535, or 0 for any free port"),
    Flag.withDescription("TCP port to serve HTTP on; 0 for any free one (default: 8000)"),
    Flag.withDefault(8000)
  ),
  httpHost: Flag.String("http-host").pipe(
    Flag.withMetavar("HOST"),
    Flag.withDescription("address to serve HTTP on (default: 127.0.0.1, this computer only; 0.0.0.0: every network)"),
    Flag.withDefault("127.0.0.1")
  ),
  out: Download.flags.out,
  select: Download.flags.select,
  maxPeers: Download.flags.maxPeers,
  port: Download.flags.port,
  peer: Download.flags.peer,
  maxUpload: Download.flags.maxUpload,
  maxDownload: Download.flags.maxDownload,
  quiet: Download.flags.quiet,
  logLevel: Download.flags.logLevel,
  noDht: Download.flags.noDht,
  noLpd: Download.flags.noLpd,
  dhtBootstrap: Download.flags.dhtBootstrap,
  encryption: Download.flags.encryption,
  utp: Download.flags.utp
}

/** The server for the torrent, in the torrents' scope; prints where it listens. */
const serve = (host: string, port: number) => (started: Download.Started) =>
  Effect.gen(function*() {
    // Loaded only by this command.
    const [{ Served }, ServedTorrent, TorrentServer] = yield* Effect.promise(() =>
      Promise.all([import("../http/Served.ts"), import("../http/ServedTorrent.ts"), import("../http/TorrentServer.ts")])
    )
    const server = yield* TorrentServer.make({ host, port }).pipe(
      Effect.provideService(Served, ServedTorrent.make(started.handles[0]!)),
      Effect.mapError(({ cause }) =>
        (cause as { code?: unknown } | undefined)?.code === "EADDRINUSE"
          ? new Input.InputError({
            input: `--http-port ${port}`,
            detail: "the port is taken; give another, or 0 for any free port"
          })
          : new Input.InputError({
            input: `--http-host ${host} --http-port ${port}`,
            detail: `cannot serve there: ${cause instanceof Error ? cause.message : String(cause)}`
          })
      )
    )
    const screen = yield* Screen
    screen.print(`serving on ${server.url}`, "stdout")
  })

export const command = Command.make(
  "serve",
  flags,
  (input) =>
    Download.run({
      ...input,
      torrents: [input.torrent],
      seed: true,
      seedRatio: Option.none(),
      seedTime: Option.none(),
      onDone: Option.none(),
      json: false,
      saveTorrent: Option.none(),
      onStart: serve(input.httpHost, input.httpPort)
    })
).pipe(
  Command.withDescription(
    "Download a torrent and serve its files over HTTP while it downloads: GET / lists them, " +
      "/files/<index> streams one (with Range requests, for players), /playlist.m3u lists the audio and video, " +
      "/status gives the progress as JSON. The first line printed is the address. It seeds once complete, " +
      "and runs until interrupted (Ctrl-C)."
  ),
  Command.withShortDescription("Download a torrent and serve its files over HTTP (for players) while it downloads"),
  Command.withExamples([
    { command: "effect-torrent serve movie.torrent -o ~/Videos", description: "then open the address it prints" },
    {
      command: "mpv http://127.0.0.1:8000/playlist.m3u",
      description: "(in another terminal) play its videos while they download"
    },
    {
      command: "effect-torrent serve 'magnet:?xt=urn:btih:...' --http-host 0.0.0.0",
      description: "for every computer on the network (no password: only where you trust it)"
    }
  ])
)
