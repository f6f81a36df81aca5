/**
 * `effect-torrent daemon`: one long-running TorrentManager driven over HTTP
 * (see `daemon/Daemon`), its session kept in `--dir` and restored on
 * start. Its first line on stdout is the address: `daemon on
 * http://127.0.0.1:9091/`. The daemon's modules are loaded only when it
 * runs, so the other commands do not pay for them.
 */
import { Effect, FileSystem, Option, Path, References } from "effect"
import { Command, Flag } from "effect/cli"
import * as NodeOs from "node:os"
import { isLoopback } from "../http/Loopback.ts"
import * as Download from "./Download.ts"
import * as HeapSize from "./HeapSize.ts"
import * as Input from "./Input.ts"
import { Screen } from "./Screen.ts"
import * as Usage from "./Usage.ts"

const flags = {
  dir: Flag.String("dir").pipe(
    Flag.withMetavar("DIR"),
    Flag.withDescription("the folder the session is kept in (default: ~/.effect-torrent)"),
    Flag.optional
  ),
  out: Flag.String("out").pipe(
    Flag.withAlias("o"),
    Flag.withMetavar("DIR"),
    Flag.withDescription("where torrents are downloaded unless added with a folder (default: DIR/downloads)"),
    Flag.optional
  ),
  rpcHost: Flag.String("rpc-host").pipe(
    Flag.withMetavar("HOST"),
    Flag.withDescription("address to serve the API on (default: 127.0.0.1; any other needs --auth)"),
    Flag.withDefault("127.0.0.1")
  ),
  rpcPort: Flag.Int("rpc-port").pipe(
    Flag.withMetavar("PORT"),
    Usage.range(0, 65_535, "a port from 1 to 65535, or 0 for any free port"),
    Flag.withDescription("TCP port to serve the API, Transmission's RPC and the web page on (default: 9091)"),
    Flag.withDefault(9091)
  ),
  watch: Flag.String("watch").pipe(
    Flag.withMetavar("DIR"),
    Flag.withDescription("add every .torrent file put in this folder (then renamed .torrent.added)"),
    Flag.optional
  ),
  auth: Flag.String("auth").pipe(
    Flag.withMetavar("USER:PASS"),
    Flag.withDescription("require HTTP basic authentication with this user and password"),
    Flag.optional
  ),
  otlp: Flag.String("otlp").pipe(
    Flag.withMetavar("URL"),
    Flag.withDescription(
      "send metrics, traces and logs to this OTLP collector (HTTP, JSON), e.g. http://127.0.0.1:4318"
    ),
    Flag.optional
  ),
  maxPeers: Download.flags.maxPeers,
  port: Download.flags.port,
  peer: Download.flags.peer,
  logLevel: Download.flags.logLevel,
  noDht: Download.flags.noDht,
  noLpd: Download.flags.noLpd,
  dhtBootstrap: Download.flags.dhtBootstrap,
  encryption: Download.flags.encryption,
  utp: Download.flags.utp
}

const logLevels = { error: "Error", warn: "Warn", info: "Info", debug: "Debug" } as const

const run = Effect.fnUntraced(function*(input: Command.Command.Config.Infer<typeof flags>) {
  const auth = Option.getOrUndefined(input.auth)
  if (auth !== undefined && !auth.includes(":")) {
    return yield* new Usage.UsageError({ detail: "--auth: give USER:PASS" })
  }
  if (auth === undefined && !isLoopback(input.rpcHost)) {
    return yield* new Usage.UsageError({
      detail: `--rpc-host ${input.rpcHost} lets other computers in: give --auth USER:PASS too`
    })
  }
  yield* Download.parseAddresses("peer", input.peer)
  const dhtBootstrap = yield* Download.parseAddresses("dht-bootstrap", input.dhtBootstrap)
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dir = path.resolve(Option.getOrElse(input.dir, () => path.join(NodeOs.homedir(), ".effect-torrent")))
  const downloadDir = path.resolve(Option.getOrElse(input.out, () => path.join(dir, "downloads")))
  yield* fs.makeDirectory(downloadDir, { recursive: true }).pipe(
    Effect.mapError((error) => new Input.InputError({ input: downloadDir, detail: `cannot make it: ${error.message}` }))
  )
  // A daemon runs many torrents at once.
  yield* HeapSize.favourSize
  // The engine and the server are loaded here, once the command runs: the other commands start without them.
  const Daemon = yield* Effect.promise(() => import("../daemon/Daemon.ts"))
  const { TorrentManager } = yield* Effect.promise(() => import("../TorrentManager.ts"))
  const { otlp } = yield* Effect.promise(() => import("../daemon/Metrics.ts"))
  const screen = yield* Screen
  return yield* Daemon.run({
    host: input.rpcHost,
    port: input.rpcPort,
    auth,
    watch: Option.getOrUndefined(input.watch),
    session: { dir, downloadDir, peers: input.peer }
  }, (url) => Effect.sync(() => screen.print(`daemon on ${url}`, "stdout"))).pipe(
    Effect.mapError((error) =>
      error._tag === "ServeError"
        ? new Input.InputError({
          input: `--rpc-host ${input.rpcHost} --rpc-port ${input.rpcPort}`,
          detail: `cannot serve there: ${error.cause instanceof Error ? error.cause.message : String(error.cause)}`
        })
        : new Input.InputError({ input: `--dir ${dir}`, detail: error.message })
    ),
    Option.isSome(input.otlp) ? Effect.provide(otlp(input.otlp.value)) : (effect) => effect,
    Effect.provide(TorrentManager.layerNode({
      downloadDir,
      maxPeers: input.maxPeers,
      port: input.port,
      dht: !input.noDht,
      dhtBootstrap: dhtBootstrap.length > 0 ? dhtBootstrap : undefined,
      localDiscovery: !input.noLpd,
      encryption: input.encryption,
      utp: input.utp
    }))
  )
}, (effect, input) =>
  effect.pipe(
    Effect.provideService(
      References.MinimumLogLevel,
      logLevels[Option.getOrElse(input.logLevel, () => "warn" as const)]
    )
  ))

export const command = Command.make("daemon", flags, run).pipe(
  Command.withDescription(
    "Run until stopped, with the torrents added over HTTP: a typed API under /api/v1 (its OpenAPI document at " +
      "/api/v1/openapi.json, events at /api/v1/events), Transmission's RPC at /transmission/rpc (for " +
      "transmission-remote and download managers), a web page at /, and metrics at /metrics. The torrents, " +
      "their folders, files, limits and whether they are paused are kept in --dir and restored on restart."
  ),
  Command.withShortDescription("Run as a daemon driven over HTTP (API, Transmission RPC, web page)"),
  Command.withExamples([
    { command: "effect-torrent daemon --watch ~/torrents", description: "then open http://127.0.0.1:9091/" },
    { command: "transmission-remote 9091 -a movie.torrent", description: "(in another terminal) add a torrent" },
    {
      command: "effect-torrent daemon --rpc-host 0.0.0.0 --auth me:secret",
      description: "for every computer on the network, with a password"
    }
  ])
)
