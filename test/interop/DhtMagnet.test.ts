/**
 * A magnet link with no tracker, found through the DHT alone: a local DHT of
 * bittorrent-dht@11 nodes on 127.0.0.1 (never the public one), a
 * webtorrent@1.9.7 seeder that announces there, and effect-torrent, started
 * from those nodes, which finds the seeder, fetches the metadata over
 * ut_metadata and downloads the data.
 */
import { assert, describe, it } from "@effect/vitest"
import type DHT from "bittorrent-dht"
import { Effect } from "effect"
import { join } from "node:path"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { addressOf, bittorrentDht, connect, eventually } from "../dht/fixtures.ts"
import { createWithCreateTorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { download } from "../util/Leecher.ts"
import { webtorrentSeeder } from "../util/Swarm.ts"

/** Whether a get_peers lookup from `dht` finds a peer for the info-hash. */
const findsPeer = (dht: DHT, infoHash: string) =>
  Effect.callback<boolean>((resume) => {
    let found = false
    const onPeer = (_peer: unknown, hash: Buffer) => {
      if (hash.toString("hex") === infoHash) found = true
    }
    dht.on("peer", onPeer)
    dht.lookup(Buffer.from(infoHash, "hex"), () => {
      dht.removeListener("peer", onPeer)
      resume(Effect.succeed(found))
    })
  })

describe("DHT", () => {
  it.live(
    "a magnet link without trackers: the seeder is found through a local DHT, then metadata and data",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("dht-magnet")
        const src = join(root, "src")
        yield* writeTree(src, [{ path: "data.bin", size: 700_001 }])
        const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), join(root, "data.torrent"), {
          pieceLength: 16 * 1024,
          announce: []
        })
        const a = yield* bittorrentDht
        const b = yield* bittorrentDht
        yield* connect(a, addressOf(b))
        yield* connect(b, addressOf(a))
        const bootstrap = [a, b].map((node) => `127.0.0.1:${addressOf(node).port}`)
        yield* webtorrentSeeder({
          torrent: join(root, "data.torrent"),
          dir: src,
          trackers: false,
          dhtBootstrap: bootstrap
        })
        // The seeder has announced itself once the DHT knows it. The magnet names no tracker and no peer:
        // the DHT is the only way to the seeder.
        yield* eventually(findsPeer(a, meta.infoHash), "the seeder's DHT announce", 20)

        const magnet = Magnet.format({ infoHash: meta.infoHash, trackers: [], peers: [], webSeeds: [] })
        const observed = yield* download(magnet, {
          downloadDir: join(root, "dst"),
          timeoutMillis: 60_000,
          settings: { dht: true, dhtBootstrap: [addressOf(a)] }
        })

        assert.strictEqual(observed.history[0]!.state, "fetching metadata")
        assert.deepStrictEqual(observed.meta.info, meta.info)
        assert.isTrue(sameBytes(join(src, "data.bin"), join(root, "dst", "data.bin")), "the file is correct")
      }),
    120_000
  )
})
