/**
 * The daemon's session survives a crash: our daemon (a child process)
 * downloads from a rate-limited aria2c seeder, is killed with SIGKILL
 * mid-download, and started again on the same folder. Every torrent is back
 * as it was (paused or not, files, limits, the global limits), and the
 * download completes byte for byte without fetching again the pieces that
 * were verified on disk when it died.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Daemon from "../util/Daemon.ts"
import { bytesOf, createWithMktorrent, piecesOnDisk, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { aria2Seeder, exitOf } from "../util/Swarm.ts"

const pieceLength = 64 * 1024

describe("effect-torrent daemon restart", () => {
  it.live(
    "SIGKILL mid-download: restored as it was, completes without fetching verified pieces again",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir("daemon-restart")
        const src = join(root, "src")
        const dst = join(root, "dst")
        const dir = join(root, "session")
        yield* writeTree(src, [
          { path: "big.bin", size: 12 * 1024 * 1024 + 123 },
          { path: "other/a.txt", size: 100_000 },
          { path: "other/b.txt", size: 50_000 }
        ])
        const big = yield* createWithMktorrent(join(src, "big.bin"), join(root, "big.torrent"), {
          pieceLength,
          announce: []
        })
        const other = yield* createWithMktorrent(join(src, "other"), join(root, "other.torrent"), {
          pieceLength,
          announce: []
        })
        const seeder = yield* aria2Seeder({ torrent: big.file, dir: src, uploadLimit: 1536 * 1024 })

        const first = yield* Daemon.start("daemon", dir, ["-o", dst, "--peer", `127.0.0.1:${seeder.port}`])
        const base64 = (file: string) => Fs.readFileSync(file).toString("base64")
        const a = yield* Daemon.api<Daemon.Torrent>(first.url, "torrents", { json: { torrent: base64(big.file) } })
        const b = yield* Daemon.api<Daemon.Torrent>(first.url, "torrents", {
          json: { torrent: base64(other.file), paused: true, selected: [1] }
        })
        yield* Daemon.api(first.url, `torrents/${b.infoHash}/limits`, {
          method: "PUT",
          json: { upload: 5000, download: 7000 },
          status: 204
        })
        yield* Daemon.api(first.url, "session/limits", {
          method: "PUT",
          json: { upload: 3_000_000, download: 0 },
          status: 204
        })

        yield* Daemon.waitForTorrent(first.url, a.id, (t) => t.done >= t.wanted * 0.4, 60_000)
        first.child.process.kill("SIGKILL")
        yield* exitOf(first.child, 10_000)
        const onDisk = bytesOf(big.meta, piecesOnDisk(dst, big.meta))
        assert.isBelow(onDisk, big.meta.length, "it was still downloading when killed")

        const second = yield* Daemon.start("daemon again", dir, ["-o", dst, "--peer", `127.0.0.1:${seeder.port}`])
        const listed = yield* Daemon.api<ReadonlyArray<Daemon.Torrent>>(second.url, "torrents")
        assert.deepStrictEqual(listed.map((t) => [t.id, t.infoHash, t.paused]), [
          [a.id, a.infoHash, false],
          [b.id, b.infoHash, true]
        ])
        const restoredB = yield* Daemon.api<Daemon.Torrent>(second.url, `torrents/${b.id}`)
        assert.strictEqual(restoredB.state, "stopped")
        assert.deepStrictEqual(restoredB.limits, { upload: 5000, download: 7000 })
        assert.deepStrictEqual(restoredB.files!.map((f) => f.priority), ["skip", "normal"])
        const session = yield* Daemon.api<{ limits: unknown }>(second.url, "session")
        assert.deepStrictEqual(session.limits, { upload: 3_000_000, download: 0 })

        const done = yield* Daemon.waitForTorrent(second.url, a.id, (t) => t.state === "seeding", 90_000)
        assert.isTrue(sameBytes(join(src, "big.bin"), join(dst, "big.bin")), "the data is the source's")
        // What was verified on disk is not fetched again (a few pieces may come twice in the endgame).
        assert.isAtMost(done.downloaded, big.meta.length - onDisk + 4 * pieceLength, `${onDisk} bytes were on disk`)
        assert.isFalse(Fs.existsSync(join(dst, "other")), "the paused torrent wrote nothing")
      }),
    { timeout: 240_000 }
  )
})
