/**
 * Downloads through the library API from other BitTorrent implementations,
 * found through real trackers: webtorrent@1.9.7 and aria2c seeders, a
 * bittorrent-tracker@10 (HTTP and UDP) and opentracker. Every test checks the
 * files byte for byte against the source.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as Fs from "node:fs"
import { join } from "node:path"
import { trackerServer } from "../tracker/fixtures.ts"
import {
  createWithCreateTorrent,
  createWithMktorrent,
  type FileSpec,
  pathOf,
  sameBytes,
  tempDir,
  writeTree
} from "../util/Files.ts"
import { download } from "../util/Leecher.ts"
import {
  aria2Seeder,
  freePort,
  opentracker,
  trackerUrls,
  waitForSeeders,
  waitUntil,
  webtorrentSeeder
} from "../util/Swarm.ts"

/** A source tree under `<root>/src`, the download folder `<root>/dst` and a .torrent path. */
const workspace = (label: string, files: ReadonlyArray<FileSpec>) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, files)
    return { root, src, dst: join(root, "dst"), torrentFile: join(root, `${label}.torrent`) }
  })

/** Every file of the torrent is in `dst`, byte-identical to `src`. */
const assertSameFiles = (
  meta: { readonly files: ReadonlyArray<{ readonly path: ReadonlyArray<string> }> },
  src: string,
  dst: string
) => {
  for (const file of meta.files) {
    const a = join(src, ...file.path)
    const b = join(dst, ...file.path)
    assert.isTrue(Fs.existsSync(b), `${file.path.join("/")} was not created`)
    assert.isTrue(sameBytes(a, b), `${file.path.join("/")} differs from the source`)
  }
}

describe("download from real peers", () => {
  it.live("from a webtorrent seeder found through a bittorrent-tracker (HTTP)", () =>
    Effect.gen(function*() {
      const tracker = yield* trackerServer
      const ws = yield* workspace("http", [{ path: "odd.bin", size: 1_000_003 }])
      const { meta } = yield* createWithCreateTorrent(join(ws.src, "odd.bin"), ws.torrentFile, {
        pieceLength: 32 * 1024,
        announce: [tracker.http]
      })
      assert.notStrictEqual(meta.length % meta.pieceLength, 0, "the last piece is short")
      yield* webtorrentSeeder({ torrent: ws.torrentFile, dir: ws.src, trackers: true })
      yield* waitForSeeders(tracker.http, meta, 1)

      const observed = yield* download(meta, { downloadDir: ws.dst })

      assertSameFiles(meta, ws.src, ws.dst)
      const last = observed.last()
      assert.strictEqual(last.state, "complete")
      assert.strictEqual(last.done, meta.length)
      assert.strictEqual(last.hashFailures, 0)
      assert.isAtLeast(last.downloaded, meta.length)
    }), 60_000)

  it.live("from a webtorrent seeder found through a bittorrent-tracker (UDP)", () =>
    Effect.gen(function*() {
      const tracker = yield* trackerServer
      const ws = yield* workspace("udp", [{ path: "odd.bin", size: 1_000_003 }])
      const { meta } = yield* createWithCreateTorrent(join(ws.src, "odd.bin"), ws.torrentFile, {
        pieceLength: 32 * 1024,
        announce: [tracker.udp]
      })
      assert.deepStrictEqual(meta.announce, [[tracker.udp]])
      yield* webtorrentSeeder({ torrent: ws.torrentFile, dir: ws.src, trackers: true })
      yield* waitForSeeders(tracker.http, meta, 1) // same swarm, scraped over HTTP

      const observed = yield* download(meta, { downloadDir: ws.dst })

      assertSameFiles(meta, ws.src, ws.dst)
      assert.strictEqual(observed.last().state, "complete")
    }), 60_000)

  it.live("from an aria2c seeder found through opentracker", () =>
    Effect.gen(function*() {
      const ws = yield* workspace("aria2", [{ path: "odd.bin", size: 3_000_017 }])
      const port = yield* freePort
      const { meta } = yield* createWithMktorrent(join(ws.src, "odd.bin"), ws.torrentFile, {
        pieceLength: 64 * 1024,
        announce: [trackerUrls(port).http]
      })
      const tracker = yield* opentracker({ port, dir: yield* tempDir("opentracker"), torrents: [meta] })
      yield* aria2Seeder({ torrent: ws.torrentFile, dir: ws.src })
      yield* waitForSeeders(tracker.http, meta, 1)

      const observed = yield* download(meta, { downloadDir: ws.dst })

      assertSameFiles(meta, ws.src, ws.dst)
      assert.strictEqual(observed.last().state, "complete")
      assert.strictEqual(observed.last().hashFailures, 0)
    }), 60_000)

  it.live(
    "from two webtorrent seeders and an aria2c seeder at once, all through one tracker",
    () =>
      Effect.gen(function*() {
        const tracker = yield* trackerServer
        const ws = yield* workspace("swarm", [{ path: "swarm.bin", size: 6 * 1024 * 1024 + 12_345 }])
        const { meta } = yield* createWithCreateTorrent(join(ws.src, "swarm.bin"), ws.torrentFile, {
          pieceLength: 64 * 1024,
          announce: [tracker.http]
        })
        // Throttled, so that no one seeder can serve it all before the others are connected.
        const limit = 1024 * 1024
        const webtorrents = [
          yield* webtorrentSeeder({ torrent: ws.torrentFile, dir: ws.src, trackers: true, uploadLimit: limit }),
          yield* webtorrentSeeder({ torrent: ws.torrentFile, dir: ws.src, trackers: true, uploadLimit: limit })
        ]
        const aria = yield* aria2Seeder({ torrent: ws.torrentFile, dir: ws.src, uploadLimit: limit })
        yield* waitForSeeders(tracker.http, meta, 3)

        const observed = yield* download(meta, { downloadDir: ws.dst })

        assertSameFiles(meta, ws.src, ws.dst)
        assert.isAtLeast(observed.maxPeers(), 2, `peers seen: ${observed.history.map((p) => p.peers).join(" ")}`)
        // Each seeder served part of it (by its own count: webtorrent's reports, aria2c's summary).
        const seeders = [...webtorrents, aria]
        yield* waitUntil(() => seeders.every((seeder) => seeder.uploaded() > 0), {
          timeoutMillis: 3000,
          message: () => `uploaded by each seeder: ${seeders.map((seeder) => seeder.uploaded()).join(", ")}`
        })
      }),
    60_000
  )

  /** Odd sizes, nested folders and zero-length files; pieces span file boundaries. */
  const tree: ReadonlyArray<FileSpec> = [
    { path: "multi/a/b/deep.bin", size: 1_000_003 },
    { path: "multi/a/empty.txt", size: 0 },
    { path: "multi/a/small.bin", size: 17 },
    { path: "multi/c/d/e/f/deeper.bin", size: 65_537 },
    { path: "multi/mid.bin", size: 300_001 },
    { path: "multi/tail.bin", size: 99_999 },
    { path: "multi/z-empty", size: 0 }
  ]

  it.live(
    "a multi-file torrent (nested folders, zero-length files, odd sizes) from a webtorrent seeder",
    () =>
      Effect.gen(function*() {
        const tracker = yield* trackerServer
        const ws = yield* workspace("multi", tree)
        const { meta } = yield* createWithCreateTorrent(join(ws.src, "multi"), ws.torrentFile, {
          pieceLength: 32 * 1024,
          announce: [tracker.http]
        })
        assert.strictEqual(meta.files.length, tree.length)
        assert.isTrue(meta.files.some((f) => f.length === 0), "the torrent lists zero-length files")
        yield* webtorrentSeeder({ torrent: ws.torrentFile, dir: ws.src, trackers: true })
        yield* waitForSeeders(tracker.http, meta, 1)

        const observed = yield* download(meta, { downloadDir: ws.dst })

        assertSameFiles(meta, ws.src, ws.dst)
        assert.deepStrictEqual(observed.last().files, meta.files.map((f) => f.length))
      }),
    60_000
  )

  it.live("only the selected files of a multi-file torrent, from an aria2c seeder", () =>
    Effect.gen(function*() {
      const tracker = yield* trackerServer
      const ws = yield* workspace("selected", tree)
      const { meta } = yield* createWithMktorrent(join(ws.src, "multi"), ws.torrentFile, {
        pieceLength: 32 * 1024,
        announce: [tracker.http]
      })
      const indexOf = (path: string) => meta.files.findIndex((f) => f.path.join("/") === path)
      const selected = [indexOf("multi/c/d/e/f/deeper.bin"), indexOf("multi/a/small.bin")]
      assert.notInclude(selected, -1)
      yield* aria2Seeder({ torrent: ws.torrentFile, dir: ws.src })
      yield* waitForSeeders(tracker.http, meta, 1)

      const observed = yield* download(meta, { downloadDir: ws.dst, selected })

      // The pieces holding a selected file, and the files each piece touches.
      const piecesOf = (i: number) => {
        const f = meta.files[i]!
        if (f.length === 0) return []
        const first = Math.floor(f.offset / meta.pieceLength)
        const last = Math.floor((f.offset + f.length - 1) / meta.pieceLength)
        return Array.from({ length: last - first + 1 }, (_, k) => first + k)
      }
      const wantedPieces = new Set(selected.flatMap(piecesOf))
      const checked = { absent: 0, partial: 0 }
      for (const [i, file] of meta.files.entries()) {
        const name = file.path.join("/")
        const target = pathOf(ws.dst, meta, i)
        if (selected.includes(i)) {
          assert.isTrue(sameBytes(pathOf(ws.src, meta, i), target), `${name} differs from the source`)
          continue
        }
        if (file.length === 0) continue // zero-length files are made up front (see the report)
        const shared = piecesOf(i).filter((p) => wantedPieces.has(p))
        if (shared.length === 0) {
          assert.isFalse(Fs.existsSync(target), `${name} was not selected and shares no piece with a selected file`)
          checked.absent++
          continue
        }
        // It shares a piece with a selected file: that piece's part of it is on disk, and right.
        assert.isTrue(Fs.existsSync(target), `${name} shares a piece with a selected file`)
        checked.partial++
        const source = Fs.readFileSync(pathOf(ws.src, meta, i))
        const written = Fs.readFileSync(target)
        for (const p of shared) {
          const from = Math.max(0, p * meta.pieceLength - file.offset)
          const to = Math.min(file.length, (p + 1) * meta.pieceLength - file.offset)
          assert.isTrue(
            source.subarray(from, to).equals(written.subarray(from, to)),
            `${name} bytes ${from}-${to} (piece ${p})`
          )
        }
      }
      assert.deepStrictEqual(checked, { absent: 1, partial: 2 }, "the layout has both kinds of unselected files")
      const wantedBytes = [...wantedPieces].reduce((n, p) => n + Metainfo.pieceSize(meta, p), 0)
      const last = observed.last()
      assert.strictEqual(last.state, "complete")
      assert.strictEqual(last.verified, wantedBytes, "only the selected files' pieces were verified")
      assert.isAtMost(last.downloaded, wantedBytes, "nothing else was downloaded")
    }), 60_000)
})
