/**
 * A peer that sends corrupt data, next to an honest one: the download still
 * completes with the right bytes, the bad pieces are counted, and the liar is
 * hung up on and never dialled again — observed from the liar's side of the
 * wire (a FakeSeeder that corrupts every block it sends).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { TorrentManager } from "../../src/TorrentManager.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { createWithCreateTorrent, sameBytes, tempDir, torrentBytes, writeTree } from "../util/Files.ts"
import { managerLayer, observe, within } from "../util/Leecher.ts"
import { waitUntil, webtorrentSeeder } from "../util/Swarm.ts"

describe("a peer sending corrupt blocks", () => {
  it.live("is banned; the download completes from the honest peer", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("corrupt")
      const src = join(root, "src")
      const dst = join(root, "dst")
      yield* writeTree(src, [{ path: "data.bin", size: 2 * 1024 * 1024 + 4321 }])
      const torrentFile = join(root, "data.torrent")
      const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), torrentFile, {
        pieceLength: 32 * 1024,
        announce: []
      })

      // Both on 127.0.0.1: the engine bans by IP, so the ban covers the honest peer's address
      // too; its connection, made before the ban, must carry the download.
      const liar = yield* FakeSeeder.make({ meta, data: torrentBytes(src, meta), corrupt: true })
      const honest = yield* webtorrentSeeder({ torrent: torrentFile, dir: src, trackers: false })

      yield* Effect.gen(function*() {
        const manager = yield* TorrentManager
        const handle = yield* manager.add(meta, {
          peers: [liar.address, { host: "127.0.0.1", port: honest.port }],
          seed: true
        })
        const observed = yield* observe(handle)
        yield* handle.completed.pipe(within(60_000, "the download", observed))
        const completedAt = Date.now()

        assert.isTrue(sameBytes(join(src, "data.bin"), join(dst, "data.bin")), "the file is correct")
        const progress = yield* handle.progress.get
        assert.isAbove(progress.hashFailures, 0, "the corrupt pieces were caught")
        assert.isAbove(liar.stats.corruptBlocksServed, 0, "the liar did send corrupt blocks")
        yield* waitUntil(() => honest.uploaded() > 0, {
          timeoutMillis: 2000,
          message: () => "the honest seeder says it sent nothing"
        })
        // We hung up on the liar, before the download was over.
        yield* waitUntil(() => liar.stats.open === 0, {
          timeoutMillis: 5000,
          message: () => `the liar still has ${liar.stats.open} open connection(s)`
        })
        // One dial: the encrypted attempt (the engine's default `prefer`), which the liar, a plain
        // peer, refuses, then the plain connection, closed by us.
        assert.deepStrictEqual(
          [liar.stats.connections, liar.stats.refused, liar.stats.closedByPeer],
          [2, 1, 1],
          "we closed the liar's one connection"
        )
        const closedAt = liar.stats.closedAt[1]!
        assert.isAtMost(closedAt, completedAt)

        // And never dial it again. A peer that was connected is redialled 60 s after its
        // session ends (Monitor's reconnect delay), so keep the torrent running (seeding)
        // until well past that.
        const redialDue = closedAt + 60_000 + 3000
        yield* Effect.sleep(Math.max(0, redialDue - Date.now()))
        assert.strictEqual(liar.stats.connections, 2, `${liar.stats.connections} connections to the liar`)
        assert.strictEqual(liar.stats.handshakes, 1)
      }).pipe(Effect.provide(managerLayer(dst)))
    }), 120_000)
})
