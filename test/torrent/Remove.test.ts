/**
 * The embedder's torrent lifecycle on real files: a download folder per
 * torrent, `remove` with `deleteFiles` (the torrent's files and resume record
 * go, anything else in the folder stays, and nothing is deleted through a
 * folder swapped for a symlink), and `addScoped` (the torrent ends with the
 * caller's scope).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Scope, Stream } from "effect"
import * as Fs from "node:fs"
import { dirname, join } from "node:path"
import * as Resume from "../../src/torrent/Resume.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { createWithCreateTorrent, sameBytes, sourceTorrent, tempDir, torrentBytes, writeTree } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"

describe("TorrentManager: folders and removal", () => {
  it.live(
    "a torrent's own folder; remove with deleteFiles deletes its files and resume record, nothing else",
    () =>
      Effect.gen(function*() {
        const { data, dst, meta, src } = yield* sourceTorrent("removed", 3 * 1024 * 1024 + 5, 64 * 1024)
        const root = dirname(dst)
        const seeder = yield* FakeSeeder.make({ meta, data })
        const { manager } = yield* startManager(join(root, "default"))
        const folder = join(root, "own")
        const handle = yield* manager.add(meta, { peers: [seeder.address], downloadDir: folder })
        yield* handle.completed.pipe(within(30_000, "the download"))
        const file = join(folder, "removed.bin")
        assert.isTrue(sameBytes(join(src, "removed.bin"), file), "downloaded into the torrent's own folder")
        assert.isFalse(Fs.existsSync(join(root, "default", "removed.bin")), "not into the manager's folder")
        Fs.writeFileSync(join(folder, "mine.txt"), "not the torrent's")

        yield* manager.remove(meta.infoHash, { deleteFiles: true })
        assert.isFalse(Fs.existsSync(file), "the torrent's file is gone")
        assert.isFalse(
          Fs.existsSync(join(folder, Resume.stateFolder, `${meta.infoHash}.resume`)),
          "its resume record too"
        )
        assert.isTrue(Fs.existsSync(join(folder, "mine.txt")), "other files stay")
        assert.strictEqual((yield* manager.list).length, 0)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "deleteFiles deletes nothing through a folder swapped for a symlink to outside",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("remove-symlink")
        const src = join(root, "src")
        yield* writeTree(src, [{ path: "album/a.bin", size: 70_000 }, { path: "album/b.bin", size: 50_000 }])
        const { meta } = yield* createWithCreateTorrent(join(src, "album"), join(root, "album.torrent"), {
          pieceLength: 32 * 1024,
          announce: []
        })
        const data = torrentBytes(src, meta)
        const seeder = yield* FakeSeeder.make({ meta, data })
        const dst = join(root, "dst")
        const { manager } = yield* startManager(dst)
        const handle = yield* manager.add(meta, { peers: [seeder.address] })
        yield* handle.completed.pipe(within(30_000, "the download"))
        // The torrent's folder becomes a link to a folder outside holding files of the same names.
        const outside = join(root, "outside")
        yield* writeTree(outside, [{ path: "a.bin", size: 10 }, { path: "b.bin", size: 10 }])
        Fs.renameSync(join(dst, "album"), join(root, "moved-away"))
        Fs.symlinkSync(outside, join(dst, "album"))
        yield* manager.remove(meta.infoHash, { deleteFiles: true })
        assert.isTrue(
          Fs.existsSync(join(outside, "a.bin")) && Fs.existsSync(join(outside, "b.bin")),
          "outside untouched"
        )
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("addScoped: the torrent is removed when the caller's scope closes", () =>
    Effect.gen(function*() {
      const { data, dst, meta } = yield* sourceTorrent("scoped", 256 * 1024, 32 * 1024)
      const seeder = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 64 * 1024 })
      const { manager } = yield* startManager(dst)
      const scope = yield* Scope.make()
      const handle = yield* manager.addScoped(meta, { peers: [seeder.address] }).pipe(Scope.provide(scope))
      yield* handle.events.pipe(Stream.filter((e) => e._tag === "PieceVerified"), Stream.take(1), Stream.runDrain)
      assert.strictEqual((yield* manager.list).length, 1)
      yield* Scope.close(scope, undefined as never)
      assert.strictEqual((yield* manager.list).length, 0, "removed with the scope")
    }).pipe(Effect.scoped), 60_000)
})
