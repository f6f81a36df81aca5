import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { defaults, TorrentConfig } from "../../src/torrent/TorrentConfig.ts"

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
        TORRENT_LOCAL_DISCOVERY: "true",
        TORRENT_LOCAL_DISCOVERY_GROUP: "239.192.152.143:6771"
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
      assert.isTrue(config.localDiscovery)
      assert.deepStrictEqual(config.localDiscoveryGroup, { host: "239.192.152.143", port: 6771 })
    }))

  it.effect("without variables, the defaults", () =>
    Effect.gen(function*() {
      const { peerId, ...config } = yield* read({})
      const { peerId: _, ...expected } = defaults()
      assert.deepStrictEqual(config, expected)
      assert.strictEqual(peerId.length, 20)
    }))

  it.effect("a value that does not parse fails, naming the setting", () =>
    Effect.gen(function*() {
      const port = yield* Effect.flip(read({ TORRENT_PORT: "99999" }))
      assert.include(port.message, "PORT")
      const bootstrap = yield* Effect.flip(read({ TORRENT_DHT_BOOTSTRAP: "router.example" }))
      assert.include(bootstrap.message, "TORRENT_DHT_BOOTSTRAP")
    }))
})
