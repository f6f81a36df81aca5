/**
 * `effect-torrent '<magnet>'` as a user runs it (a child process): the
 * magnet's `x.pe` names a webtorrent@1.9.7 seeder; the CLI shows "fetching
 * metadata", fetches it, downloads, exits 0, and `--save-torrent` leaves a
 * .torrent with the original's info-hash.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import { createWithCreateTorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { freePort, spawnChild, webtorrentSeeder } from "../util/Swarm.ts"

describe("the CLI with a magnet link", () => {
  it.live("downloads like a .torrent file and saves the fetched metadata", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("cli-magnet")
      const src = join(root, "src")
      yield* writeTree(src, [{ path: "payload/a.bin", size: 700_001 }, { path: "payload/b/c.bin", size: 123_457 }])
      const torrentFile = join(root, "payload.torrent")
      const { meta } = yield* createWithCreateTorrent(join(src, "payload"), torrentFile, {
        pieceLength: 16 * 1024,
        announce: []
      })
      const seeder = yield* webtorrentSeeder({ torrent: torrentFile, dir: src, trackers: false })
      const magnet = Magnet.format({
        infoHash: meta.infoHash,
        name: "payload",
        trackers: [],
        peers: [`127.0.0.1:${seeder.port}`],
        webSeeds: []
      })
      const saved = join(root, "saved.torrent")
      const dst = join(root, "dst")

      const cli = yield* spawnChild("effect-torrent CLI", process.execPath, [
        "--import",
        "tsx",
        "src/cli/main.ts",
        magnet,
        "-o",
        dst,
        "--save-torrent",
        saved,
        "--no-dht",
        "--no-lpd",
        "--port",
        String(yield* freePort)
      ])
      const code = yield* Effect.promise(() => cli.exit).pipe(
        Effect.timeoutOrElse({
          duration: 60_000,
          orElse: () => Effect.die(new Error(`the CLI did not finish:\n${cli.output()}`))
        })
      )

      assert.strictEqual(code, 0, cli.output())
      assert.include(cli.output(), "fetching metadata (")
      assert.include(cli.output(), "done: every torrent is complete and verified")
      for (const file of ["payload/a.bin", "payload/b/c.bin"]) {
        assert.isTrue(sameBytes(join(src, file), join(dst, file)), `${file} is correct`)
      }
      const decoded = Metainfo.decode(Fs.readFileSync(saved))
      assert.isTrue(Result.isSuccess(decoded), "the saved .torrent reads back")
      if (Result.isSuccess(decoded)) {
        assert.strictEqual(decoded.success.infoHash, meta.infoHash)
        assert.strictEqual(decoded.success.name, "payload")
      }
    }), 90_000)
})
