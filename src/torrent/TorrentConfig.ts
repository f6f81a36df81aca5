/**
 * Settings for the engine, read from `TORRENT_*` environment variables by
 * `layer`, or given directly with `layerWith` (CLI flags, tests).
 */
import { Config, ConfigProvider, Context, Effect, Layer, Option, Random } from "effect"
import type { Settings as LpdSettings } from "../lpd/Lpd.ts"
import * as Encryption from "../peer/Encryption.ts"
import * as Utp from "../peer/Utp.ts"

export interface Settings {
  /** Folder that downloads are written under. */
  readonly downloadDir: string
  /** Most open peer connections per torrent. */
  readonly maxPeers: number
  /** Most connection attempts in flight per torrent. */
  readonly maxHalfOpen: number
  /**
   * Most open peer connections over all torrents (incoming and outgoing).
   * Unless given, at least `maxPeers`: one torrent may have every connection
   * it is allowed.
   */
  readonly maxConnections: number
  /** Most open incoming connections from one IP address. */
  readonly maxConnectionsPerHost: number
  /** Most files each torrent keeps open at once. */
  readonly maxOpenFiles: number
  /** TCP port we listen on and announce (the next free ones are tried when it is taken, unless `strictPort`). */
  readonly port: number
  /** Fail to start when `port` is taken, instead of taking another. */
  readonly strictPort: boolean
  /** Address to listen on; default: every interface (IPv6 and IPv4). The DHT runs on its family alone. */
  readonly listenHost: string | undefined
  /** Our 20-byte peer id (Azureus style: -ET0100-…). */
  readonly peerId: Uint8Array
  readonly connectTimeoutMillis: number
  /**
   * How long a connected peer may take to answer each handshake stage (MSE's, then BitTorrent's).
   * Generous, because a busy peer answers late, not never: aria2c takes up three connections a
   * second, so fifty torrents dialling one aria2c just started (which dials itself fifty times)
   * wait up to half a minute in its queue, and a dial given up leaves its place there taken.
   */
  readonly handshakeTimeoutMillis: number
  /** A request not answered in this time is given to another peer. */
  readonly requestTimeoutMillis: number
  /** A peer that sends nothing for this long is dropped. */
  readonly idleTimeoutMillis: number
  readonly keepAliveMillis: number
  /** Global upload and download limits in bytes/s (0 = unlimited); adjustable with `TorrentManager.setLimits`. */
  readonly maxUploadRate: number
  readonly maxDownloadRate: number
  /** Completed pieces waiting for hashing and writing, in bytes, before requests pause. */
  readonly maxPendingBytes: number
  /**
   * The pieces open and waiting for the disk over all of a manager's torrents,
   * in bytes (each torrent may always have one open): see `PieceMemory`.
   */
  readonly maxPieceMemoryBytes: number
  /**
   * Whether to run a DHT node (BEP 5) and look for peers there (never for
   * private torrents). Off by default in the library, on in the CLI.
   */
  readonly dht: boolean
  /** Where the DHT node starts; default: the well-known public routers. */
  readonly dhtBootstrap: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  /**
   * Keep DHT nodes whose ids do not fit their addresses (BEP 42) out of the
   * routing tables; by default they are only given way to by those that fit.
   */
  readonly dhtRequireSecureIds: boolean
  /**
   * Whether to announce torrents on the local network and hear others (BEP 14
   * local service discovery; never for private torrents). Off by default in
   * the library, on in the CLI.
   */
  readonly localDiscovery: boolean
  /** The multicast group and interface for it; default: BEP 14's group on every interface. */
  readonly localDiscoveryGroup: Partial<LpdSettings> | undefined
  /**
   * Message stream encryption (MSE/PE): `prefer` (the default, as in the
   * CLI: dial encrypted, falling back to plain; accept both; RC4 only with
   * peers that want nothing else), `require` (encrypted both ways, RC4 only)
   * or `disable` (plain only).
   */
  readonly encryption: Encryption.Policy
  /**
   * uTP (BEP 29), on the UDP port of `port` (shared with the DHT): `prefer`
   * (dial uTP, and TCP too when uTP has no answer within 250 ms; the first
   * to open is kept; accept both), `only` (dial uTP only; accept both) or
   * `disable` (TCP only, the default for now: uTP costs more CPU than TCP,
   * see `npm run bench`).
   */
  readonly utp: Utp.Policy
}

/** A new peer id: "-ET0100-" and 12 bytes from Effect's `Random` (a seeded run gets the same id). */
export const makePeerId: Effect.Effect<Uint8Array> = Effect.map(
  Effect.replicateEffect(Random.nextIntBetween(0, 255), 12),
  (random) => {
    const id = Buffer.alloc(20)
    id.write("-ET0100-", "latin1")
    id.set(random, 8)
    return id
  }
)

/** Every setting's default but the peer id, which each layer makes with `makePeerId`. */
export const defaults: Omit<Settings, "peerId"> = {
  downloadDir: ".",
  maxPeers: 50,
  maxHalfOpen: 8,
  maxConnections: 200,
  maxConnectionsPerHost: 8,
  maxOpenFiles: 32,
  port: 6881,
  strictPort: false,
  listenHost: undefined,
  connectTimeoutMillis: 10_000,
  handshakeTimeoutMillis: 30_000,
  requestTimeoutMillis: 30_000,
  idleTimeoutMillis: 120_000,
  keepAliveMillis: 90_000,
  maxUploadRate: 0,
  maxDownloadRate: 0,
  maxPendingBytes: 8 * 1024 * 1024,
  maxPieceMemoryBytes: 64 * 1024 * 1024,
  dht: false,
  dhtBootstrap: undefined,
  dhtRequireSecureIds: false,
  localDiscovery: false,
  localDiscoveryGroup: undefined,
  encryption: "prefer",
  utp: "disable"
}

export class TorrentConfig extends Context.Service<TorrentConfig, Settings>()("effect-torrent/torrent/TorrentConfig") {
  static readonly layerWith = (settings: Partial<Settings>) =>
    Layer.effect(
      TorrentConfig,
      Effect.map(
        settings.peerId === undefined ? makePeerId : Effect.succeed(settings.peerId),
        (peerId) => TorrentConfig.of({ ...defaults, ...settings, maxConnections: connectionsFor(settings), peerId })
      )
    )

  /**
   * Every setting from `TORRENT_*` (`TORRENT_MAX_PEERS`, `TORRENT_DHT`…: the
   * setting's name in constant case), each defaulting as `defaults`; a
   * value that does not parse fails the layer with a ConfigError naming it.
   * `TORRENT_DHT_BOOTSTRAP` is a comma-separated list of host:port;
   * `TORRENT_LOCAL_DISCOVERY_GROUP` is the multicast group as host:port.
   */
  static readonly layer = Layer.effect(
    TorrentConfig,
    Effect.gen(function*() {
      const int = (name: string, fallback: number) => Config.Int(name).pipe(Config.withDefault(fallback))
      const flag = (name: string, fallback: boolean) => Config.Boolean(name).pipe(Config.withDefault(fallback))
      const optional = (name: string) => Config.String(name).pipe(Config.option, Config.map(Option.getOrUndefined))
      const read = yield* Config.all({
        downloadDir: Config.String("DOWNLOAD_DIR").pipe(Config.withDefault(defaults.downloadDir)),
        maxPeers: int("MAX_PEERS", defaults.maxPeers),
        maxHalfOpen: int("MAX_HALF_OPEN", defaults.maxHalfOpen),
        maxConnections: Config.Int("MAX_CONNECTIONS").pipe(Config.option, Config.map(Option.getOrUndefined)),
        maxConnectionsPerHost: int("MAX_CONNECTIONS_PER_HOST", defaults.maxConnectionsPerHost),
        maxOpenFiles: int("MAX_OPEN_FILES", defaults.maxOpenFiles),
        port: Config.Port("PORT").pipe(Config.withDefault(defaults.port)),
        strictPort: flag("STRICT_PORT", defaults.strictPort),
        listenHost: optional("LISTEN_HOST"),
        connectTimeoutMillis: int("CONNECT_TIMEOUT_MILLIS", defaults.connectTimeoutMillis),
        handshakeTimeoutMillis: int("HANDSHAKE_TIMEOUT_MILLIS", defaults.handshakeTimeoutMillis),
        requestTimeoutMillis: int("REQUEST_TIMEOUT_MILLIS", defaults.requestTimeoutMillis),
        idleTimeoutMillis: int("IDLE_TIMEOUT_MILLIS", defaults.idleTimeoutMillis),
        keepAliveMillis: int("KEEP_ALIVE_MILLIS", defaults.keepAliveMillis),
        maxUploadRate: int("MAX_UPLOAD_RATE", defaults.maxUploadRate),
        maxDownloadRate: int("MAX_DOWNLOAD_RATE", defaults.maxDownloadRate),
        maxPendingBytes: int("MAX_PENDING_BYTES", defaults.maxPendingBytes),
        maxPieceMemoryBytes: int("MAX_PIECE_MEMORY_BYTES", defaults.maxPieceMemoryBytes),
        dht: flag("DHT", defaults.dht),
        dhtBootstrap: optional("DHT_BOOTSTRAP").pipe(
          Config.flatMap((list) => list === undefined ? Config.succeed(undefined) : addresses("DHT_BOOTSTRAP", list))
        ),
        dhtRequireSecureIds: flag("DHT_REQUIRE_SECURE_IDS", defaults.dhtRequireSecureIds),
        localDiscovery: flag("LOCAL_DISCOVERY", defaults.localDiscovery),
        localDiscoveryGroup: optional("LOCAL_DISCOVERY_GROUP").pipe(
          Config.flatMap((group) =>
            group === undefined
              ? Config.succeed(undefined)
              : Config.map(addresses("LOCAL_DISCOVERY_GROUP", group), ([address]) => address)
          )
        ),
        encryption: Config.Literals(Encryption.policies, "ENCRYPTION").pipe(Config.withDefault(defaults.encryption)),
        utp: Config.Literals(Utp.policies, "UTP").pipe(Config.withDefault(defaults.utp))
      }).pipe(Config.nested("TORRENT"))
      return TorrentConfig.of({ ...defaults, ...read, maxConnections: connectionsFor(read), peerId: yield* makePeerId })
    })
  )
}

/** `maxConnections` as given, else the default or `maxPeers`, whichever is more. */
const connectionsFor = (settings: {
  readonly maxPeers?: number | undefined
  readonly maxConnections?: number | undefined
}): number => settings.maxConnections ?? Math.max(defaults.maxConnections, settings.maxPeers ?? defaults.maxPeers)

/** A comma-separated list of "host:port" (IPv6 hosts in brackets); anything else fails naming the setting. */
const addresses = (
  name: string,
  text: string
): Config.Config<Array<{ readonly host: string; readonly port: number }>> => {
  const parsed = text.split(",").map((entry) => /^\s*\[?([^\]\s]+?)\]?:(\d{1,5})\s*$/.exec(entry))
  return parsed.every((match) => match !== null && Number(match[2]) <= 65535)
    ? Config.succeed(parsed.map((match) => ({ host: match![1]!, port: Number(match![2]) })))
    : Config.fail(
      new ConfigProvider.SourceError({
        message: `TORRENT_${name}: expected host:port[,host:port…], got ${JSON.stringify(text)}`
      })
    )
}
