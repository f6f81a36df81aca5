import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Random } from "effect"
import { defaults, type Settings, TorrentConfig } from "../../src/torrent/TorrentConfig.ts"

const read = (env: Record<string, string>) =>
  Effect.provide(TorrentConfig, TorrentConfig.layer).pipe(
    Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord(env)))
  )

describe("TorrentConfig.layer", () => {
  it.effect("reads every setting from TORRENT_* variables", () =>
    Effect.gen(function*() {
      const config = yield* read({
        TORRENT_DOWNLOAD_DIR: "/data",
        TORRENT_MAX_PEERS: "7",
        TORRENT_PORT: "51413",
        TORRENT_STRICT_PORT: "true",
        TORRENT_LISTEN_HOST: "::1",
        TORRENT_IDLE_TIMEOUT_MILLIS: "5000",
        TORRENT_MAX_UPLOAD_RATE: "1024",
        TORRENT_MAX_PENDING_BYTES: "1048576",
        TORRENT_DHT: "true",
        TORRENT_DHT_BOOTSTRAP: "127.0.0.1:6881,[::1]:6882",
        TORRENT_DHT_REQUIRE_SECURE_IDS: "true",
        TORRENT_LOCAL_DISCOVERY: "true",
        TORRENT_LOCAL_DISCOVERY_GROUP: "239.192.152.143:6771",
        TORRENT_ENCRYPTION: "require"
      })
      assert.strictEqual(config.downloadDir, "/data")
      assert.strictEqual(config.maxPeers, 7)
      assert.strictEqual(config.port, 51413)
      assert.isTrue(config.strictPort)
      assert.strictEqual(config.listenHost, "::1")
      assert.strictEqual(config.idleTimeoutMillis, 5000)
      assert.strictEqual(config.maxUploadRate, 1024)
      assert.strictEqual(config.maxPendingBytes, 1048576)
      assert.isTrue(config.dht)
      assert.deepStrictEqual(config.dhtBootstrap, [{ host: "127.0.0.1", port: 6881 }, { host: "::1", port: 6882 }])
      assert.isTrue(config.dhtRequireSecureIds)
      assert.isTrue(config.localDiscovery)
      assert.deepStrictEqual(config.localDiscoveryGroup, { host: "239.192.152.143", port: 6771 })
      assert.strictEqual(config.encryption, "require")
    }))

  it.effect("without variables, the defaults", () =>
    Effect.gen(function*() {
      const { peerId, ...config } = yield* read({})
      assert.deepStrictEqual(config, defaults)
      assert.strictEqual(peerId.length, 20)
    }))

  it.effect("the peer id is -ET0100- and 12 bytes from Effect's Random: the same seed, the same id", () =>
    Effect.gen(function*() {
      const withSettings = (settings: Partial<Settings>) =>
        Effect.map(Effect.provide(TorrentConfig, TorrentConfig.layerWith(settings)), (config) => config.peerId)
      const fromEnv = yield* Effect.map(read({}), (config) => config.peerId).pipe(Random.withSeed("peer id"))
      assert.strictEqual(Buffer.from(fromEnv.subarray(0, 8)).toString("latin1"), "-ET0100-")
      assert.deepStrictEqual(yield* withSettings({}).pipe(Random.withSeed("peer id")), fromEnv)
      assert.notDeepEqual(yield* withSettings({}).pipe(Random.withSeed("another")), fromEnv)
      const given = new Uint8Array(20).fill(7)
      assert.strictEqual(yield* withSettings({ peerId: given }), given)
    }))

  it.effect("most connections over all torrents: as given, else the default or the most per torrent, whichever is more", () =>
    Effect.gen(function*() {
      const withSettings = (settings: Partial<Settings>) =>
        Effect.map(Effect.provide(TorrentConfig, TorrentConfig.layerWith(settings)), (config) => config.maxConnections)
      assert.strictEqual(yield* withSettings({ maxPeers: 500 }), 500)
      assert.strictEqual(yield* withSettings({ maxPeers: 20 }), defaults.maxConnections)
      assert.strictEqual(yield* withSettings({ maxPeers: 500, maxConnections: 300 }), 300)
      assert.strictEqual((yield* read({ TORRENT_MAX_PEERS: "500" })).maxConnections, 500)
      assert.strictEqual(
        (yield* read({ TORRENT_MAX_PEERS: "500", TORRENT_MAX_CONNECTIONS: "300" })).maxConnections,
        300
      )
    }))

  it.effect("a value that does not parse fails, naming the setting", () =>
    Effect.gen(function*() {
      const port = yield* Effect.flip(read({ TORRENT_PORT: "99999" }))
      assert.include(port.message, "PORT")
      const bootstrap = yield* Effect.flip(read({ TORRENT_DHT_BOOTSTRAP: "router.example" }))
      assert.include(bootstrap.message, "TORRENT_DHT_BOOTSTRAP")
      const encryption = yield* Effect.flip(read({ TORRENT_ENCRYPTION: "always" }))
      assert.include(encryption.message, "ENCRYPTION")
    }))
})
