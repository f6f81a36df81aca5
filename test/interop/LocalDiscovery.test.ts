/**
 * Local service discovery (BEP 14) through the engine: a seeder and a
 * leecher, two TorrentManagers with no tracker and no peer address, find
 * each other on a multicast group sent and joined on 127.0.0.1 only (nothing
 * leaves the machine), and the leecher downloads the data; a private torrent
 * (BEP 27) is never announced there.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { createWithCreateTorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { download, startManager } from "../util/Leecher.ts"
import { freePort } from "../util/Swarm.ts"

/** A seeding TorrentManager with local discovery on a loopback group, and the settings for a leecher on the same group. */
const seeding = (isPrivate: boolean) =>
  Effect.gen(function*() {
    const root = yield* tempDir("lpd")
    const src = join(root, "src")
    yield* writeTree(src, [{ path: "data.bin", size: 500_009 }])
    const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), join(root, "data.torrent"), {
      pieceLength: 16 * 1024,
      announce: [],
      private: isPrivate
    })
    const settings = {
      localDiscovery: true,
      localDiscoveryGroup: { host: "239.255.77.14", port: yield* freePort, interface: "127.0.0.1" }
    }
    const { manager: seeder } = yield* startManager(src, settings)
    yield* seeder.add(meta, { seed: true })
    return { root, src, meta, settings }
  })

describe("local service discovery", () => {
  it.live("a leecher finds a seeder on the local multicast group and downloads from it", () =>
    Effect.gen(function*() {
      const { root, src, meta, settings } = yield* seeding(false)

      const observed = yield* download(meta, { downloadDir: join(root, "dst"), timeoutMillis: 30_000, settings })

      assert.isTrue(sameBytes(join(src, "data.bin"), join(root, "dst", "data.bin")), "the file is correct")
      assert.isAtLeast(observed.maxPeers(), 1)
    }), 60_000)

  it.live("a private torrent is neither announced nor looked for there", () =>
    Effect.gen(function*() {
      const { root, meta, settings } = yield* seeding(true)
      assert.isTrue(meta.private)
      const { manager: leecher } = yield* startManager(join(root, "dst"), settings)
      const handle = yield* leecher.add(meta)
      // The public torrent above is found within a second; here nothing in five.
      yield* Effect.sleep("5 seconds")
      const progress = yield* handle.progress.get
      assert.strictEqual(progress.peers, 0)
      assert.strictEqual(progress.downloaded, 0)
    }), 60_000)
})
