/**
 * File selection changed while a torrent runs, on real files: a seeding
 * torrent that selected one file takes on another when told, and only
 * that; an index that is not a file is refused by name.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { join } from "node:path"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { createWithCreateTorrent, sameBytes, tempDir, torrentBytes, writeTree } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"

const size = 1024 * 1024

describe("TorrentManager: file selection", () => {
  it.live(
    "select while running: the newly selected file is downloaded, the unselected one is not",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("select")
        const src = join(root, "src")
        yield* writeTree(src, ["a.bin", "b.bin", "c.bin"].map((name) => ({ path: `set/${name}`, size })))
        const { meta } = yield* createWithCreateTorrent(join(src, "set"), join(root, "set.torrent"), {
          pieceLength: 64 * 1024,
          announce: []
        })
        const seeder = yield* FakeSeeder.make({ meta, data: torrentBytes(src, meta) })
        const { manager } = yield* startManager(join(root, "dst"))
        const handle = yield* manager.add(meta, { peers: [seeder.address], selected: [0], seed: true })
        yield* handle.completed.pipe(within(30_000, "the first file"))

        const wrong = yield* Effect.flip(handle.select([0, 3]))
        assert.strictEqual(wrong.message, "no file 3: the torrent has 3 files (indexes from 0)")

        yield* handle.select([0, 2])
        const last = yield* handle.progress.changes.pipe(
          Stream.filter((p) => p.files[2] === size),
          Stream.runHead,
          within(30_000, "the newly selected file")
        )
        assert.isTrue(sameBytes(join(src, "set/c.bin"), join(root, "dst/set/c.bin")), "c.bin is complete")
        // Pieces shared with the selected files bring a little of b.bin, no more.
        assert.isBelow(last._tag === "Some" ? last.value.files[1]! : size, 128 * 1024)
      }).pipe(Effect.scoped),
    60_000
  )
})
