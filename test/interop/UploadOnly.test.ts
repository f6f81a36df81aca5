/**
 * Upload-only (BEP 21) with libtorrent (Debian's python3-libtorrent, driven
 * by test/util/libtorrent-peer.py on loopback): once the files we selected
 * are in, we are upload-only, and libtorrent, not a seed, hangs up on us
 * once it has what we have, as it does on upload-only peers.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as CreateTorrent from "../../src/torrent/CreateTorrent.ts"
import { type FileSpec, tempDir, writeTree } from "../util/Files.ts"
import { observe, startManager, within } from "../util/Leecher.ts"
import { helper, jsonLine, python } from "../util/Libtorrent.ts"
import { spawnChild, waitForLine } from "../util/Swarm.ts"

const pieceLength = 32 * 1024

/** The first file (files are in name order) ends on a piece boundary, so its pieces are its own. */
const files: ReadonlyArray<FileSpec> = [
  { path: "a-wanted.bin", size: 4 * pieceLength },
  { path: "b-other.bin", size: 100_003 }
]

describe("upload-only (BEP 21) with libtorrent", () => {
  it.live(
    "libtorrent takes us for upload-only once the file we selected is in (the other absent): it hangs up once it has our pieces",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("upload-only-libtorrent")
        const source = join(root, "seed", "payload")
        yield* writeTree(source, files)
        const { bytes, meta } = yield* CreateTorrent.create(source, { pieceLength }).pipe(
          Effect.provide(NodeServices.layer)
        )
        const torrent = join(root, "payload.torrent")
        Fs.writeFileSync(torrent, bytes)
        // Only the selected file is on disk.
        Fs.rmSync(join(source, "b-other.bin"))
        const { manager } = yield* startManager(join(root, "seed"), { dht: false, localDiscovery: false })
        const ours = yield* manager.add(meta, { selected: [0], seed: true })
        const observed = yield* observe(ours)
        yield* ours.completed.pipe(within(30_000, "our check of the selected file", observed))
        const leecher = yield* spawnChild("libtorrent", python, [
          helper,
          "upload-only",
          torrent,
          join(root, "libtorrent"),
          `127.0.0.1:${manager.port}`
        ])
        const seen = yield* waitForLine(leecher, jsonLine<{ closed: string | null }>, 70_000)
        // It takes the pieces we have, then, not finished, hangs up on us for having nothing more it
        // wants: what it does to an upload-only peer (a peer that is not one may get more pieces later).
        assert.deepStrictEqual(seen, { closed: "uninteresting upload-only peer" }, leecher.output())
      }),
    90_000
  )
})
