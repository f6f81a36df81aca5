/**
 * Magnet links end to end through the library: the metadata is fetched over
 * ut_metadata (BEP 9) from real peers found through a local tracker (the
 * magnet's `tr`), then the data is downloaded and checked byte for byte.
 * Seeders: aria2c and webtorrent@1.9.7. A magnet's `so` (BEP 53) selects
 * the files once the metadata is in.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { trackerServer } from "../tracker/fixtures.ts"
import { createWithCreateTorrent, createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { download } from "../util/Leecher.ts"
import { aria2Seeder, waitForSeeders, webtorrentSeeder } from "../util/Swarm.ts"

/** Data under `<root>/src`, a download folder `<root>/dst`, a .torrent path. */
const workspace = (label: string, size: number) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, [{ path: "data.bin", size }])
    return { src, file: join(src, "data.bin"), dst: join(root, "dst"), torrentFile: join(root, `${label}.torrent`) }
  })

describe("magnet links", () => {
  it.live(
    "metadata from an aria2c seeder over ut_metadata, found through the magnet's tracker; then the data",
    () =>
      Effect.gen(function*() {
        const tracker = yield* trackerServer
        // Over 16 KiB of metadata: 2,000 pieces' hashes, so it comes in three ut_metadata pieces.
        const ws = yield* workspace("magnet-aria2", 2000 * 32 * 1024 - 777)
        const { meta } = yield* createWithMktorrent(ws.file, ws.torrentFile, {
          pieceLength: 32 * 1024,
          announce: [tracker.http]
        })
        assert.isAbove(meta.info.length, 2 * 16 * 1024)
        yield* aria2Seeder({ torrent: ws.torrentFile, dir: ws.src })
        yield* waitForSeeders(tracker.http, meta, 1)
        const magnet = Magnet.format({ infoHash: meta.infoHash, trackers: [tracker.http], peers: [], webSeeds: [] })

        const observed = yield* download(magnet, { downloadDir: ws.dst, timeoutMillis: 90_000 })

        assert.strictEqual(observed.history[0]!.state, "fetching metadata")
        assert.strictEqual(observed.meta.infoHash, meta.infoHash)
        assert.deepStrictEqual(observed.meta.info, meta.info)
        assert.deepStrictEqual(observed.meta.announce, [[tracker.http]])
        assert.isTrue(sameBytes(ws.file, join(ws.dst, "data.bin")), "the file is correct")
        assert.strictEqual(observed.last().state, "complete")
      }),
    120_000
  )

  it.live("metadata from a webtorrent seeder, then the data", () =>
    Effect.gen(function*() {
      const tracker = yield* trackerServer
      const ws = yield* workspace("magnet-webtorrent", 1_000_003)
      const { meta } = yield* createWithCreateTorrent(ws.file, ws.torrentFile, {
        pieceLength: 16 * 1024,
        announce: [tracker.http]
      })
      yield* webtorrentSeeder({ torrent: ws.torrentFile, dir: ws.src, trackers: true })
      yield* waitForSeeders(tracker.http, meta, 1)
      const magnet = Magnet.format({
        infoHash: meta.infoHash,
        name: "data.bin",
        trackers: [tracker.http],
        peers: [],
        webSeeds: []
      })

      const observed = yield* download(magnet, { downloadDir: ws.dst })

      assert.strictEqual(observed.history[0]!.state, "fetching metadata")
      assert.deepStrictEqual(observed.meta.info, meta.info)
      assert.isTrue(sameBytes(ws.file, join(ws.dst, "data.bin")), "the file is correct")
    }), 90_000)

  it.live("so=0,2-3 downloads those files only, from an aria2c seeder given by x.pe", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("magnet-so")
      const src = join(root, "src")
      // Whole pieces each, so that no piece is shared with the file left out.
      const sizes = [64 * 1024, 96 * 1024, 32 * 1024, 50_001]
      yield* writeTree(src, sizes.map((size, i) => ({ path: `set/f${i}.bin`, size })))
      const torrentFile = join(root, "set.torrent")
      const { meta } = yield* createWithMktorrent(join(src, "set"), torrentFile, {
        pieceLength: 32 * 1024,
        announce: []
      })
      const seeder = yield* aria2Seeder({ torrent: torrentFile, dir: src })
      const magnet = `${
        Magnet.format({ infoHash: meta.infoHash, trackers: [], peers: [`127.0.0.1:${seeder.port}`], webSeeds: [] })
      }&so=0,2-3`
      const dst = join(root, "dst")

      const observed = yield* download(magnet, { downloadDir: dst })

      assert.strictEqual(observed.last().wanted, sizes[0]! + sizes[2]! + sizes[3]!)
      for (const i of [0, 2, 3]) assert.isTrue(sameBytes(join(src, "set", `f${i}.bin`), join(dst, "set", `f${i}.bin`)))
      assert.isFalse(Fs.existsSync(join(dst, "set", "f1.bin")), "the file left out was written")
    }), 90_000)
})
