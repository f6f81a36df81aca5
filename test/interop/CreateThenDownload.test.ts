/**
 * Torrents made by `effect-torrent create` download in other clients: the CLI
 * (a child process) makes a torrent of a folder of random data (nested
 * folders, a zero-length file, sizes on and off piece boundaries), our library
 * seeds it through a local bittorrent-tracker, and aria2c and webtorrent@1.9.7
 * leechers get every file byte for byte, the empty one included.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, References, Result } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { trackerServer } from "../tracker/fixtures.ts"
import { type FileSpec, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { aria2Leecher, type Child, freePort, scrape, spawnChild, waitForLine, waitUntil } from "../util/Swarm.ts"

const pieceLength = 32 * 1024

/** About 3.4 MB; the zero-length file sits between non-empty ones. */
const files: ReadonlyArray<FileSpec> = [
  { path: "top level.bin", size: 1_000_003 },
  { path: "a/b/c/deep.bin", size: 777_777 },
  { path: "a/empty.dat", size: 0 },
  { path: "a/one.txt", size: 1 },
  { path: "b/exact.bin", size: 10 * pieceLength },
  { path: "b/just-over.bin", size: pieceLength + 1 },
  { path: "z/last.bin", size: 1_234_567 }
]

const name = "payload"

/** Waits for a child to exit (at most `timeoutMillis`) and returns its exit code, or dies with its output. */
const exitOf = (child: Child, timeoutMillis: number) =>
  Effect.promise(() => child.exit).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () => Effect.die(new Error(`${child.label} did not exit within ${timeoutMillis} ms:\n${child.output()}`))
    })
  )

/** The files of `files` under `root/payload` that are missing or differ from the source's. */
const mismatches = (source: string, root: string) =>
  files
    .map((file) => file.path)
    .filter((path) => {
      const target = join(root, name, ...path.split("/"))
      return !Fs.existsSync(target) || !sameBytes(join(source, ...path.split("/")), target)
    })

/**
 * A tracker; the data; its torrent, made by our CLI; and our seeder of it,
 * listed by the tracker (all in the test's scope).
 */
const swarm = Effect.gen(function*() {
  const tracker = yield* trackerServer
  const root = yield* tempDir("create-then-download")
  const seedDir = join(root, "seed")
  const source = join(seedDir, name)
  yield* writeTree(source, files)

  const torrentFile = join(root, `${name}.torrent`)
  const create = yield* spawnChild("effect-torrent create", process.execPath, [
    "--import",
    "tsx",
    "src/cli/main.ts",
    "create",
    source,
    "-t",
    tracker.http,
    "-o",
    torrentFile,
    "--piece-length",
    "32K"
  ])
  const code = yield* exitOf(create, 20_000)
  assert.strictEqual(code, 0, create.output())

  const decoded = Metainfo.decode(Fs.readFileSync(torrentFile))
  if (Result.isFailure(decoded)) return yield* Effect.die(decoded.failure)
  const meta = decoded.success
  assert.strictEqual(meta.name, name)
  assert.strictEqual(meta.pieceLength, pieceLength)
  assert.strictEqual(meta.length, files.reduce((total, file) => total + file.size, 0))
  assert.deepStrictEqual(
    meta.files.filter((file) => !file.padding).map((file) => [file.path.join("/"), file.length]).sort(),
    files.map((file) => [`${name}/${file.path}`, file.size]).sort(),
    "the torrent lists every file, the empty one included"
  )

  const context = yield* Layer.build(
    TorrentManager.layerNode({ downloadDir: seedDir, port: 0, listenHost: "127.0.0.1" }).pipe(
      Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
    )
  )
  const manager = context.mapUnsafe.get(TorrentManager.key) as TorrentManager["Service"]
  const seeder = yield* manager.add(meta, { seed: true })
  yield* seeder.completed.pipe(
    Effect.timeoutOrElse({
      duration: 10_000,
      orElse: () => Effect.die(new Error("our seeder did not verify its data in 10 s"))
    }),
    Effect.orDie
  )
  // So that the leechers' first announce finds our seeder. It is counted as
  // a peer, not as a seeder: its first announce goes out before its progress
  // shows the verified data, so it says `left` = the whole torrent.
  yield* waitUntil(() => scrape(tracker.http, meta).then((swarm) => swarm.complete + swarm.incomplete >= 1), {
    timeoutMillis: 10_000,
    intervalMillis: 200,
    message: () => "the tracker does not list our seeder"
  })
  return { root, source, torrentFile }
})

describe("torrents made by `effect-torrent create`", () => {
  it.live("aria2c downloads one from us", () =>
    Effect.gen(function*() {
      const { root, source, torrentFile } = yield* swarm
      const out = join(root, "aria2c")
      const child = yield* aria2Leecher({ torrent: torrentFile, dir: out })
      const code = yield* exitOf(child, 15_000)
      assert.strictEqual(code, 0, child.output())
      assert.deepStrictEqual(mismatches(source, out), [], "files missing or different")
    }), 30_000)

  it.live("webtorrent@1.9.7 downloads one from us", () =>
    Effect.gen(function*() {
      const { root, source, torrentFile } = yield* swarm
      const port = yield* freePort
      const out = join(root, "webtorrent")
      Fs.mkdirSync(out)
      const child = yield* spawnChild("webtorrent leecher", process.execPath, [
        fileURLToPath(new URL("../util/webtorrent-seeder.cjs", import.meta.url)),
        JSON.stringify({ torrent: torrentFile, dir: out, port, trackers: true })
      ])
      // It prints {"ready":true,…} once it has all the data (or {"ready":false,…} after 20 s).
      const ready = yield* waitForLine(child, (line) => {
        try {
          return JSON.parse(line) as { ready?: boolean; progress?: number }
        } catch {
          return undefined
        }
      }, 15_000)
      assert.isTrue(ready.ready, `webtorrent has ${ready.progress} of the data:\n${child.output()}`)
      // It writes through a chunk store: wait (bounded) until every file is on disk in full.
      yield* waitUntil(() => mismatches(source, out).length === 0, {
        timeoutMillis: 5_000,
        intervalMillis: 100,
        message: () => `webtorrent's files missing or different: ${mismatches(source, out).join(", ")}`
      })
    }), 30_000)
})
