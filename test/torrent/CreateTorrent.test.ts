/**
 * CreateTorrent.create on real files: a folder (nested, zero-length, more than
 * one 4 MiB read, links followed and skipped) and a single file. Progress
 * starts at 0 once the files are listed, rises with every read and ends at
 * the total; the bytes decode with `Metainfo.decode` to the `meta` returned;
 * every piece hash matches the files' data in torrent order. Failures are
 * `CreateError`s naming the problem, and a file that changes while it is
 * hashed, or a progress callback that fails, ends the creation.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, type Path, Result } from "effect"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as CreateTorrent from "../../src/torrent/CreateTorrent.ts"
import { deterministicBytes, tempDir } from "../util/Files.ts"

const MiB = 1024 * 1024

/** The folder's regular files (and the link to one inside it), in torrent order. */
const folderFiles: ReadonlyArray<readonly [string, number]> = [
  ["A.bin", 3],
  ["big.bin", 9 * MiB + 12345], // three reads
  ["empty.dat", 0],
  ["link.bin", 70001], // a symbolic link to sub/odd.bin
  ["sub/deeper/exact.bin", 4 * MiB], // one read, exactly
  ["sub/odd.bin", 70001],
  ["sub-x.txt", 17]
]

/** Writes `dir/folder`: the files above, a link inside, and three links that must be skipped. */
const writeFolder = (dir: string) =>
  Effect.sync(() => {
    const root = join(dir, "folder")
    folderFiles.forEach(([path, length], i) => {
      if (path === "link.bin") return
      Fs.mkdirSync(join(root, path, ".."), { recursive: true })
      Fs.writeFileSync(join(root, path), deterministicBytes(length, i + 1))
    })
    Fs.symlinkSync("sub/odd.bin", join(root, "link.bin"))
    Fs.writeFileSync(join(dir, "outside.bin"), "outside")
    Fs.symlinkSync(join(dir, "outside.bin"), join(root, "outside link"))
    Fs.symlinkSync("..", join(root, "sub/deeper/folder link"))
    Fs.symlinkSync("nowhere", join(root, "dangling"))
    return root
  })

/** Every piece's SHA-1 against the data of the files (below `dir`) concatenated in the torrent's order. */
const assertPiecesMatch = (dir: string, meta: Metainfo.Metainfo) => {
  const data = Buffer.concat(meta.files.map((file) => Fs.readFileSync(join(dir, ...file.path))))
  assert.strictEqual(data.length, meta.length)
  for (let index = 0; index < meta.pieceCount; index++) {
    const start = index * meta.pieceLength
    const hash = createHash("sha1").update(data.subarray(start, start + Metainfo.pieceSize(meta, index))).digest()
    assert.isTrue(hash.equals(Metainfo.pieceHash(meta, index)), `piece ${index} of ${meta.pieceCount}`)
  }
}

/** Progress starts at 0 with the total known, rises with every read, and ends at the total. */
const assertProgress = (events: ReadonlyArray<CreateTorrent.Progress>, total: number, reads: number) => {
  assert.strictEqual(events.length, 1 + reads, "one event at the start, then one per read")
  assert.deepStrictEqual(events[0], { bytesHashed: 0, totalLength: total })
  for (let i = 1; i < events.length; i++) {
    assert.strictEqual(events[i]!.totalLength, total)
    assert.isAbove(events[i]!.bytesHashed, events[i - 1]!.bytesHashed, `event ${i} rises`)
  }
  assert.strictEqual(events[events.length - 1]!.bytesHashed, total)
}

/**
 * Node's file system listing each folder in reverse: Node (libuv) lists names
 * sorted, which, folder by folder, is already the torrent's order, so only
 * another order shows that the files are sorted.
 */
const reverseListings = Layer.effect(
  FileSystem.FileSystem,
  Effect.map(FileSystem.FileSystem, (fs) =>
    FileSystem.FileSystem.of({
      ...fs,
      readDirectoryEntries: (path) => Effect.map(fs.readDirectoryEntries(path), (entries) => [...entries].reverse())
    }))
).pipe(Layer.provide(NodeServices.layer))

const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

describe("CreateTorrent", () => {
  it.live("a folder: files in torrent order, links inside followed, others skipped, progress to the total, pieces verify", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("create-torrent")
      const root = yield* writeFolder(dir)
      const progress: Array<CreateTorrent.Progress> = []
      const skips: Array<CreateTorrent.Skipped> = []
      const trackers = ["http://t1.example/announce", "udp://t2.example:6969"]
      const created = yield* CreateTorrent.create(root, {
        pieceLength: 64 * 1024,
        trackers,
        webSeeds: ["https://seed.example/files/"],
        private: true,
        comment: "made in a test",
        creationDate: 1_700_000_000,
        onProgress: (p) => Effect.sync(() => progress.push(p)),
        onSkip: (s) => Effect.sync(() => skips.push(s))
      })

      const total = folderFiles.reduce((n, [, length]) => n + length, 0)
      const reads = folderFiles.reduce((n, [, length]) => n + Math.ceil(length / (4 * MiB)), 0)
      assert.strictEqual(reads, 8)
      assertProgress(progress, total, reads)

      const decoded = Metainfo.decode(created.bytes)
      assert.isTrue(Result.isSuccess(decoded))
      const meta = Result.getOrThrow(decoded)
      assert.strictEqual(meta.infoHash, created.meta.infoHash)
      assert.strictEqual(meta.name, "folder")
      assert.isTrue(meta.multiFile)
      assert.deepStrictEqual(
        meta.files.map((file) => [file.path.join("/"), file.length]),
        folderFiles.map(([path, length]) => [`folder/${path}`, length])
      )
      assert.strictEqual(meta.length, total)
      assert.strictEqual(meta.pieceLength, 64 * 1024)
      assert.strictEqual(meta.pieceCount, Math.ceil(total / (64 * 1024)))
      assert.isTrue(meta.private)
      assert.strictEqual(meta.creationDate, 1_700_000_000)
      assert.strictEqual(meta.comment, "made in a test")
      assert.deepStrictEqual(meta.announce, trackers.map((url) => [url]))
      assertPiecesMatch(dir, meta)

      const expectedSkips: ReadonlyArray<CreateTorrent.Skipped> = [
        { path: ["dangling"], reason: "DanglingLink" },
        { path: ["outside link"], reason: "LinkOutside" },
        { path: ["sub", "deeper", "folder link"], reason: "LinkToFolder" }
      ]
      const byPath = (a: CreateTorrent.Skipped, b: CreateTorrent.Skipped) =>
        a.path.join("/") < b.path.join("/") ? -1 : 1
      assert.deepStrictEqual([...created.skipped].sort(byPath), expectedSkips)
      assert.deepStrictEqual([...skips].sort(byPath), expectedSkips)
    }).pipe(Effect.provide(Layer.merge(NodeServices.layer, reverseListings))))

  it.live("a single file: its name, the automatic piece length, progress to the total, pieces verify", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("create-torrent")
      const file = join(dir, "one file.bin")
      const length = 5 * MiB + 1
      Fs.writeFileSync(file, deterministicBytes(length, 7))
      const progress: Array<CreateTorrent.Progress> = []
      const created = yield* CreateTorrent.create(file, { onProgress: (p) => Effect.sync(() => progress.push(p)) })

      assertProgress(progress, length, 2)
      const meta = Result.getOrThrow(Metainfo.decode(created.bytes))
      assert.strictEqual(meta.infoHash, created.meta.infoHash)
      assert.strictEqual(meta.name, "one file.bin")
      assert.isFalse(meta.multiFile)
      assert.strictEqual(meta.length, length)
      assert.strictEqual(meta.pieceLength, 16 * 1024) // 321 pieces: the smallest length gives at most 2000
      assert.isFalse(meta.private)
      assert.deepStrictEqual(meta.announce, [])
      assert.isTrue(Math.abs((meta.creationDate ?? 0) - Date.now() / 1000) < 600)
      assert.deepStrictEqual(created.skipped, [])
      assertPiecesMatch(dir, meta)
    }).pipe(Effect.provide(NodeServices.layer)))

  it.live("bad options and inputs fail with a CreateError naming the problem, before reading anything", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("create-torrent")
      Fs.writeFileSync(join(dir, "data.bin"), "data")
      Fs.writeFileSync(join(dir, "empty.bin"), "")
      Fs.mkdirSync(join(dir, "nothing/inside"), { recursive: true })
      Fs.mkdirSync(join(dir, "with fifo"))
      Fs.writeFileSync(join(dir, "with fifo/a.bin"), "a")
      execFileSync("mkfifo", [join(dir, "with fifo/pipe")])
      const data = join(dir, "data.bin")
      const cases: ReadonlyArray<
        readonly [Effect.Effect<unknown, CreateTorrent.CreateError, FileSystem.FileSystem | Path.Path>, string, string]
      > = [
        [
          CreateTorrent.create(data, { pieceLength: 30000 }),
          "PieceLength",
          "piece length 30000 is not a power of two from 16 KiB (16384) to 64 MiB (67108864)"
        ],
        [
          CreateTorrent.create(data, { trackers: ["example.com:80"] }),
          "Url",
          `tracker "example.com:80" is not an http, https, udp, ws or wss URL`
        ],
        [
          CreateTorrent.create(data, { webSeeds: ["ftp://x/"] }),
          "Url",
          `web seed "ftp://x/" is not an http or https URL`
        ],
        [CreateTorrent.create(join(dir, "missing")), "Missing", `${join(dir, "missing")}: no such file or folder`],
        [
          CreateTorrent.create(join(dir, "empty.bin")),
          "NoData",
          `${join(dir, "empty.bin")} is empty; a torrent needs data`
        ],
        [
          CreateTorrent.create(join(dir, "nothing")),
          "NoData",
          `${join(dir, "nothing")} holds no files; a torrent needs data`
        ],
        [
          CreateTorrent.create(join(dir, "with fifo")),
          "NotRegular",
          `${JSON.stringify(join(dir, "with fifo/pipe"))} is a FIFO, not a regular file`
        ]
      ]
      for (const [effect, problem, message] of cases) {
        const error = yield* failureOf(effect)
        assert.instanceOf(error, CreateTorrent.CreateError)
        assert.strictEqual(error.problem, problem)
        assert.strictEqual(error.message, message)
      }
    }).pipe(Effect.provide(NodeServices.layer)))

  it.live("a file that grows while it is hashed fails with Changed; a failing progress callback ends the creation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("create-torrent")
      const file = join(dir, "growing.bin")
      Fs.writeFileSync(file, deterministicBytes(6 * MiB, 3))

      // After the first read, the file grows: the length listed no longer holds.
      let reads = 0
      const changed = yield* failureOf(CreateTorrent.create(file, {
        onProgress: (p) =>
          Effect.sync(() => {
            if (p.bytesHashed > 0 && reads++ === 0) Fs.appendFileSync(file, "more")
          })
      }))
      assert.strictEqual(changed.problem, "Changed")
      assert.strictEqual(
        changed.message,
        `${JSON.stringify(file)} changed while it was hashed; try again once it is complete`
      )

      // The callback's own failure comes out as it is, and no read follows it.
      const seen: Array<number> = []
      const stopped = yield* failureOf(CreateTorrent.create(file, {
        onProgress: (p) =>
          Effect.suspend(() => {
            seen.push(p.bytesHashed)
            return p.bytesHashed > 0 ? Effect.fail("stop" as const) : Effect.void
          })
      }))
      assert.strictEqual(stopped, "stop")
      assert.deepStrictEqual(seen, [0, 4 * MiB])
    }).pipe(Effect.provide(NodeServices.layer)))
})
