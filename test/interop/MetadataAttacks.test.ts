/**
 * Peers lying about a magnet link's metadata, over real TCP: each lie is
 * caught, the liar is hung up on (seen from its side of the wire) and never
 * dialled again, and the download completes from an honest webtorrent@1.9.7
 * seeder. The honest seeder sits behind a gate that opens only once the liar
 * has been dropped, so the liar is always the one we first fetch from.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { createWithCreateTorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { managerLayer, observe, within } from "../util/Leecher.ts"
import * as MetadataLiar from "../util/MetadataLiar.ts"
import { waitUntil, webtorrentSeeder } from "../util/Swarm.ts"

const attack = (lie: MetadataLiar.Lie) =>
  Effect.gen(function*() {
    const root = yield* tempDir(`liar-${lie}`)
    const src = join(root, "src")
    const dst = join(root, "dst")
    // 1,500 pieces: 30,000 bytes of hashes, so the metadata comes in two pieces.
    yield* writeTree(src, [{ path: "data.bin", size: 1500 * 16 * 1024 - 99 }])
    const torrentFile = join(root, "data.torrent")
    const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), torrentFile, {
      pieceLength: 16 * 1024,
      announce: []
    })
    const liar = yield* MetadataLiar.make({ infoHash: InfoHash.toBytes(meta.infoHash), info: meta.info, lie })
    const honest = yield* webtorrentSeeder({ torrent: torrentFile, dir: src, trackers: false })
    const gate = yield* MetadataLiar.gate({ host: "127.0.0.1", port: honest.port })
    const magnet = Magnet.format({ infoHash: meta.infoHash, trackers: [], peers: [], webSeeds: [] })

    return yield* Effect.gen(function*() {
      const manager = yield* TorrentManager
      const handle = yield* manager.add(magnet, { peers: [liar.address, gate.address] })
      const observed = yield* observe(handle)
      yield* waitUntil(() => liar.stats.closedByPeer === 1, {
        timeoutMillis: 15_000,
        message: () => `the liar (${lie}) was not hung up on: ${JSON.stringify(liar.stats)}`
      })
      gate.open()
      yield* handle.completed.pipe(within(60_000, "the download", observed))

      const fetched = yield* handle.metadata
      assert.strictEqual(fetched.infoHash, meta.infoHash)
      assert.isTrue(sameBytes(join(src, "data.bin"), join(dst, "data.bin")), "the file is correct")
      assert.strictEqual(observed.history[0]!.state, "fetching metadata")
      // One dial, never again: the encrypted attempt (the engine's default `prefer`), refused, then plain.
      assert.deepStrictEqual([liar.stats.connections, liar.stats.refused], [2, 1], "the liar was never dialled again")
      return liar.stats
    }).pipe(Effect.provide(managerLayer(dst, { handshakeTimeoutMillis: 30_000 })))
  })

describe("metadata attacks", () => {
  it.live("an oversized metadata_size is refused before any request", () =>
    Effect.gen(function*() {
      const stats = yield* attack("oversized")
      assert.strictEqual(stats.requests, 0)
    }), 90_000)

  it.live("a metadata_size of 0 is refused before any request", () =>
    Effect.gen(function*() {
      const stats = yield* attack("zero-size")
      assert.strictEqual(stats.requests, 0)
    }), 90_000)

  it.live("metadata that does not hash to the info-hash: its only sender is banned", () =>
    Effect.gen(function*() {
      const stats = yield* attack("wrong-hash")
      assert.strictEqual(stats.requests, 2, "both pieces were asked of it")
    }), 90_000)

  it.live("a piece index out of range", () =>
    Effect.gen(function*() {
      const stats = yield* attack("out-of-range")
      assert.isAtLeast(stats.requests, 1)
    }), 90_000)

  it.live("a block of the wrong size", () =>
    Effect.gen(function*() {
      const stats = yield* attack("wrong-size")
      assert.isAtLeast(stats.requests, 1)
    }), 90_000)
})
