/**
 * effect-torrent as the source of metadata and of peers, for
 * webtorrent@1.9.7 leechers that know nothing but a magnet link and our
 * address (no tracker, no DHT):
 * - they fetch the metadata from us over ut_metadata (BEP 9), then the data;
 * - through our ut_pex messages (BEP 11) they learn of a third peer we talk
 *   to, and connect to it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, References } from "effect"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { createWithMktorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { type Child, freePort, spawnChild, waitForLine } from "../util/Swarm.ts"

/** Our seeder of a fresh torrent (in the test's scope), and the torrent's magnet link. */
const seeder = (label: string, size: number) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const seedDir = join(root, "seed")
    yield* writeTree(seedDir, [{ path: "data.bin", size }])
    const { meta } = yield* createWithMktorrent(join(seedDir, "data.bin"), join(root, "data.torrent"), {
      pieceLength: 32 * 1024,
      announce: []
    })
    const context = yield* Layer.build(
      TorrentManager.layerNode({ downloadDir: seedDir, port: 0, listenHost: "127.0.0.1" }).pipe(
        Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
      )
    )
    const manager = context.mapUnsafe.get(TorrentManager.key) as TorrentManager["Service"]
    const magnet = Magnet.format({ infoHash: meta.infoHash, trackers: [], peers: [], webSeeds: [] })
    return { root, source: join(seedDir, "data.bin"), meta, manager, magnet }
  })

/** A webtorrent leecher of `magnet` that dials only `peers`. */
const leecher = (label: string, magnet: string, dir: string, peers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const child = yield* spawnChild(label, process.execPath, [
      fileURLToPath(new URL("../util/webtorrent-leecher.cjs", import.meta.url)),
      JSON.stringify({ torrent: magnet, dir, port, peers })
    ])
    return { child, port }
  })

const line = (child: Child, key: string) =>
  waitForLine(child, (text) => {
    try {
      const value = JSON.parse(text) as Record<string, unknown>
      return key in value ? value : undefined
    } catch {
      return undefined
    }
  }, 60_000)

describe("serving metadata and peers", () => {
  it.live(
    "a webtorrent leecher with only the magnet and our address fetches the metadata from us, then the data",
    () =>
      Effect.gen(function*() {
        const { magnet, manager, meta, root, source } = yield* seeder("serve-metadata", 3 * 1024 * 1024 + 17)
        yield* manager.add(meta, { seed: true })
        const out = join(root, "webtorrent")
        const { child } = yield* leecher("webtorrent leecher", magnet, out, [`127.0.0.1:${manager.port}`])
        yield* line(child, "metadata")
        yield* line(child, "done")
        assert.isTrue(sameBytes(source, join(out, "data.bin")))
      }),
    90_000
  )

  it.live(
    "a webtorrent leecher that knows only us learns of a third peer through our ut_pex and connects to it",
    () =>
      Effect.gen(function*() {
        const { magnet, manager, meta, root } = yield* seeder("pex", 8 * 1024 * 1024 + 5)
        // The third peer: a webtorrent leecher that dials no one; we dial it.
        const third = yield* leecher("third peer", magnet, join(root, "third"), [])
        yield* manager.add(meta, { seed: true, peers: [{ host: "127.0.0.1", port: third.port }] })
        yield* line(third.child, "metadata")
        // The leecher is told only our address.
        const { child } = yield* leecher("pex leecher", magnet, join(root, "leecher"), [`127.0.0.1:${manager.port}`])
        const thirdAddress = `127.0.0.1:${third.port}`
        yield* waitForLine(child, (text) => text.includes(`"${thirdAddress}"`) ? true : undefined, 30_000)
      }),
    90_000
  )
})
