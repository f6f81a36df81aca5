/**
 * Settings for the engine, read from `TORRENT_*` environment variables by
 * `layer`, or given directly with `layerWith` (CLI flags, tests).
 */
import { randomBytes } from "node:crypto"
import { Config, Context, Effect, Layer } from "effect"
import type { Settings as LpdSettings } from "../lpd/Lpd.ts"

export interface Settings {
  /** Folder that downloads are written under. */
  readonly downloadDir: string
  /** Most open peer connections per torrent. */
  readonly maxPeers: number
  /** Most connection attempts in flight per torrent. */
  readonly maxHalfOpen: number
  /** Most open peer connections over all torrents (incoming and outgoing). */
  readonly maxConnections: number
  /** Most open incoming connections from one IP address. */
  readonly maxConnectionsPerHost: number
  /** Most files each torrent keeps open at once. */
  readonly maxOpenFiles: number
  /** TCP port we listen on and announce (the next free ones are tried when it is taken, unless `strictPort`). */
  readonly port: number
  /** Fail to start when `port` is taken, instead of taking another. */
  readonly strictPort: boolean
  /** Address to listen on; default: every interface (IPv6 and IPv4). */
  readonly listenHost: string | undefined
  /** Our 20-byte peer id (Azureus style: -ET0100-…). */
  readonly peerId: Uint8Array
  readonly connectTimeoutMillis: number
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
   * Whether to run a DHT node (BEP 5) and look for peers there (never for
   * private torrents). Off by default in the library, on in the CLI.
   */
  readonly dht: boolean
  /** Where the DHT node starts; default: the well-known public routers. */
  readonly dhtBootstrap: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  /**
   * Whether to announce torrents on the local network and hear others (BEP 14
   * local service discovery; never for private torrents). Off by default in
   * the library, on in the CLI.
   */
  readonly localDiscovery: boolean
  /** The multicast group and interface for it; default: BEP 14's group on every interface. */
  readonly localDiscoveryGroup: Partial<LpdSettings> | undefined
}

export const makePeerId = (): Uint8Array => {
  const id = Buffer.alloc(20)
  id.write("-ET0100-", "latin1")
  randomBytes(12).copy(id, 8)
  return id
}

export const defaults = (): Settings => ({
  downloadDir: ".",
  maxPeers: 50,
  maxHalfOpen: 8,
  maxConnections: 200,
  maxConnectionsPerHost: 8,
  maxOpenFiles: 32,
  port: 6881,
  strictPort: false,
  listenHost: undefined,
  peerId: makePeerId(),
  connectTimeoutMillis: 10_000,
  handshakeTimeoutMillis: 10_000,
  requestTimeoutMillis: 30_000,
  idleTimeoutMillis: 120_000,
  keepAliveMillis: 90_000,
  maxUploadRate: 0,
  maxDownloadRate: 0,
  maxPendingBytes: 8 * 1024 * 1024,
  dht: false,
  dhtBootstrap: undefined,
  localDiscovery: false,
  localDiscoveryGroup: undefined
})

export class TorrentConfig extends Context.Service<TorrentConfig, Settings>()("effect-torrent/torrent/TorrentConfig") {
  static readonly layerWith = (settings: Partial<Settings>) =>
    Layer.sync(TorrentConfig, () => TorrentConfig.of({ ...defaults(), ...settings }))

  static readonly layer = Layer.effect(
    TorrentConfig,
    Effect.gen(function*() {
      const base = defaults()
      const read = yield* Config.all({
        downloadDir: Config.String("DOWNLOAD_DIR").pipe(Config.withDefault(base.downloadDir)),
        maxPeers: Config.Int("MAX_PEERS").pipe(Config.withDefault(base.maxPeers)),
        maxHalfOpen: Config.Int("MAX_HALF_OPEN").pipe(Config.withDefault(base.maxHalfOpen)),
        maxConnections: Config.Int("MAX_CONNECTIONS").pipe(Config.withDefault(base.maxConnections)),
        maxConnectionsPerHost: Config.Int("MAX_CONNECTIONS_PER_HOST").pipe(Config.withDefault(base.maxConnectionsPerHost)),
        maxOpenFiles: Config.Int("MAX_OPEN_FILES").pipe(Config.withDefault(base.maxOpenFiles)),
        port: Config.Int("PORT").pipe(Config.withDefault(base.port)),
        strictPort: Config.Boolean("STRICT_PORT").pipe(Config.withDefault(base.strictPort))
      }).pipe(Config.nested("TORRENT"))
      return TorrentConfig.of({ ...base, ...read })
    })
  )
}
