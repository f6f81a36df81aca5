/**
 * A swarm of effect-torrent instances over loopback: one seeder and several
 * leechers that start together, all finding each other through a local
 * bittorrent-tracker. Every leecher completes with correct data, and the
 * leechers upload to each other (the seeder is not the only source).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { trackerServer } from "../tracker/fixtures.ts"
import { createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"

/** One effect-torrent instance: its own listener, peer id and download folder. */
const instance = (downloadDir: string) =>
  Layer.build(TorrentManager.layerNode({ downloadDir, port: 0, listenHost: "127.0.0.1", maxPeers: 20 })).pipe(
    Effect.map((context) => context.mapUnsafe.get(TorrentManager.key) as TorrentManager["Service"])
  )

describe("effect-torrent swarm", () => {
  it.live(
    "a seeder and four leechers starting at once: all complete, and leechers trade pieces",
    () =>
      Effect.gen(function*() {
        const tracker = yield* trackerServer
        const root = yield* tempDir("swarm")
        const seedDir = join(root, "seed")
        yield* writeTree(seedDir, [{ path: "data.bin", size: 24 * 1024 * 1024 + 777 }])
        const { meta } = yield* createWithMktorrent(join(seedDir, "data.bin"), join(root, "data.torrent"), {
          pieceLength: 64 * 1024,
          announce: [tracker.http]
        })
        // The seeder is throttled so that leechers must get much of the data from each other.
        const seeder = yield* instance(seedDir)
        yield* seeder.add(meta, { seed: true, maxUploadRate: 6 * 1024 * 1024 })
        const leechers = yield* Effect.forEach([1, 2, 3, 4], (n) =>
          Effect.gen(function*() {
            const dir = join(root, `leech${n}`)
            const manager = yield* instance(dir)
            const handle = yield* manager.add(meta, { seed: true })
            return { dir, handle }
          }))
        yield* Effect.forEach(leechers, ({ handle }) => handle.completed, { concurrency: "unbounded" }).pipe(
          Effect.timeoutOrElse({
            duration: "90 seconds",
            orElse: () => Effect.die(new Error("the swarm did not complete in 90 s"))
          })
        )
        for (const { dir } of leechers) {
          assert.isTrue(sameBytes(join(seedDir, "data.bin"), join(dir, "data.bin")), `${dir} has the right data`)
        }
        const uploads = yield* Effect.forEach(
          leechers,
          ({ handle }) => handle.progress.get.pipe(Effect.map((p) => p.uploaded))
        )
        const fromLeechers = uploads.reduce((a, b) => a + b, 0)
        assert.isAbove(fromLeechers, meta.length / 4, `leechers uploaded ${fromLeechers} bytes to each other`)
      }),
    120_000
  )
})
