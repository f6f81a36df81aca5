/**
 * Real leechers download from an effect-torrent seeder over loopback, each
 * through a local bittorrent-tracker, and get byte-identical data:
 * webtorrent@1.9.7, aria2c and transmission-cli. transmission-cli never dials
 * the 127.x addresses a tracker hands it, so it is reached by our seeder
 * dialling the leechers the tracker lists, as a seeder should.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, References } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { trackerServer } from "../tracker/fixtures.ts"
import { createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { aria2Leecher, freePort, scrape, spawnChild, waitFor, waitUntil } from "../util/Swarm.ts"
import { fileURLToPath } from "node:url"

const size = 6 * 1024 * 1024 + 4321

/** A tracker, seed data and its torrent; then our seeder on it (in the test's scope). */
const swarm = Effect.gen(function*() {
  const tracker = yield* trackerServer
  const root = yield* tempDir("seeding")
  const seedDir = join(root, "seed")
  yield* writeTree(seedDir, [{ path: "data.bin", size }])
  const torrent = yield* createWithMktorrent(join(seedDir, "data.bin"), join(root, "data.torrent"), {
    pieceLength: 32 * 1024,
    announce: [tracker.http]
  })
  const startSeeder = Effect.gen(function*() {
    const context = yield* Layer.build(
      TorrentManager.layerNode({ downloadDir: seedDir, port: 0, listenHost: "127.0.0.1" }).pipe(
        Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
      )
    )
    const manager = context.mapUnsafe.get(TorrentManager.key) as TorrentManager["Service"]
    return yield* manager.add(torrent.meta, { seed: true })
  })
  return { root, seedDir, torrent, startSeeder, tracker: tracker.http }
})

const leecherDone = (source: string, target: string, what: string) =>
  waitUntil(() => Fs.existsSync(target) && Fs.statSync(target).size === size && sameBytes(source, target), {
    timeoutMillis: 60_000,
    intervalMillis: 250,
    message: () => `${what} did not get the data`
  })

describe("seeding to other clients", () => {
  it.live("webtorrent@1.9.7 downloads from us", () =>
    Effect.gen(function*() {
      const { root, seedDir, startSeeder, torrent } = yield* swarm
      const seeder = yield* startSeeder
      const port = yield* freePort
      const out = join(root, "webtorrent")
      yield* spawnChild("webtorrent leecher", process.execPath, [
        fileURLToPath(new URL("../util/webtorrent-seeder.cjs", import.meta.url)),
        JSON.stringify({ torrent: torrent.file, dir: out, port, trackers: true })
      ])
      yield* leecherDone(join(seedDir, "data.bin"), join(out, "data.bin"), "webtorrent")
      yield* waitFor(Effect.map(seeder.progress.get, (progress) => progress.uploaded >= size), {
        timeoutMillis: 5_000,
        message: () => "our upload counter did not reach the torrent's size"
      })
    }), 90_000)

  it.live("aria2c downloads from us", () =>
    Effect.gen(function*() {
      const { root, seedDir, startSeeder, torrent } = yield* swarm
      yield* startSeeder
      const out = join(root, "aria2c")
      const child = yield* aria2Leecher({ torrent: torrent.file, dir: out })
      const code = yield* Effect.promise(() => child.exit).pipe(Effect.timeout("60 seconds"))
      assert.strictEqual(code, 0, child.output())
      assert.isTrue(sameBytes(join(seedDir, "data.bin"), join(out, "data.bin")))
    }), 90_000)

  it.live("transmission-cli downloads from us once we dial it", () =>
    Effect.gen(function*() {
      const { root, seedDir, startSeeder, torrent, tracker } = yield* swarm
      const port = yield* freePort
      const out = join(root, "transmission")
      Fs.mkdirSync(out)
      yield* spawnChild("transmission-cli", "transmission-cli", [
        "-w",
        out,
        "-p",
        String(port),
        "-g",
        join(root, "transmission-config"),
        "-M",
        torrent.file
      ])
      // transmission announces first, so that our seeder's first announce lists it.
      yield* waitUntil(() => scrape(tracker, torrent.meta).then((swarm) => swarm.incomplete >= 1), {
        timeoutMillis: 30_000,
        intervalMillis: 250,
        message: () => "transmission-cli did not announce itself"
      })
      yield* startSeeder
      yield* leecherDone(join(seedDir, "data.bin"), join(out, "data.bin"), "transmission-cli")
    }), 90_000)
})
