/**
 * Hostile .torrent files, metadata and download folders, end to end against
 * the real engine (TorrentManager.layerNode) and CLI: paths that try to
 * escape the download folder, symlinks inside it that lead out (planted
 * before the download, or swapped in while files are written), and bencode
 * bombs. Each escape case snapshots the folder around the download folder
 * before and after, so "nothing was written outside" is observed, not
 * assumed. What each case measured is recorded for SECURITY.md.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { createHash } from "node:crypto"
import { once } from "node:events"
import * as Fs from "node:fs"
import { join } from "node:path"
import { Worker } from "node:worker_threads"
import * as Bencode from "../../src/protocol/Bencode.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import * as DiskWriter from "../../src/torrent/DiskWriter.ts"
import { PieceWorker } from "../../src/torrent/PieceWorker.ts"
import type { TorrentError } from "../../src/torrent/Torrent.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import {
  createWithCreateTorrent,
  deterministicBytes,
  piecesOnDisk,
  snapshot,
  tempDir,
  torrentBytes,
  writeTree
} from "../util/Files.ts"
import { managerLayer, within } from "../util/Leecher.ts"
import * as MetadataLiar from "../util/MetadataLiar.ts"
import { record } from "../util/SecurityResults.ts"
import { exitOf, ourCli } from "../util/Swarm.ts"

/** A download folder `dst` next to a folder `outside` (with a file in it), both in a fresh temp folder `root`. */
const folders = (label: string) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const dst = join(root, "dst")
    const outside = join(root, "outside")
    Fs.mkdirSync(dst)
    yield* writeTree(outside, [{ path: "victim.bin", size: 1000 }, { path: "dir/victim.bin", size: 1000 }])
    return { root, dst, outside, before: snapshot(root, [dst]) }
  })

/** Adds `torrent` to a TorrentManager on `dst` and returns the error its download fails with. */
const failure = (
  torrent: Metainfo.Metainfo | string,
  dst: string,
  peers: ReadonlyArray<FakeSeeder.FakeSeeder["address"]>
) =>
  Effect.gen(function*() {
    const manager = yield* TorrentManager
    const handle = yield* manager.add(torrent, { peers })
    return yield* handle.completed.pipe(Effect.flip, within(30_000, "the refusal"))
  }).pipe(Effect.scoped, Effect.provide(managerLayer(dst)))

/** The ways a file path can try to get out (components after the torrent's folder, `dst/folder/`). */
const escapes: ReadonlyArray<
  { readonly label: string; readonly path: (outside: string) => ReadonlyArray<string>; readonly problem: RegExp }
> = [
  {
    label: `".." components`,
    path: () => ["..", "..", "outside", "escaped.bin"],
    problem: /has a "\.\." path component/
  },
  { label: "an absolute path", path: (outside) => [join(outside, "escaped.bin")], problem: /path separator/ },
  { label: "Windows separators", path: () => ["..\\..\\outside\\escaped.bin"], problem: /path separator/ },
  { label: "a Windows drive letter", path: () => ["C:escaped.bin"], problem: /drive letter/ },
  { label: "a NUL byte", path: () => ["escaped.bin\0.txt"], problem: /NUL byte/ }
]

/** What a refusal names: the offending component, as JSON shows it. */
const shown = (path: ReadonlyArray<string>) => JSON.stringify(path[path.length - 1]!).slice(1, -1)

const sha1 = (bytes: Uint8Array) => createHash("sha1").update(bytes).digest()

describe("hostile files › escaping paths", () => {
  for (const unsafe of escapes) {
    it.live(
      `magnet metadata with ${unsafe.label} in a file path: refused, naming the path; nothing written outside`,
      () =>
        Effect.gen(function*() {
          const { before, dst, outside, root } = yield* folders("escape-magnet")
          const path = unsafe.path(outside)
          // A real info dictionary (3 pieces of 16 KiB), honest but for the path, served by a peer over TCP.
          const data = deterministicBytes(40_000, 1)
          const hashes = Buffer.concat([0, 1, 2].map((i) => sha1(data.subarray(i * 16384, (i + 1) * 16384))))
          const info = Bencode.encode({
            name: "folder",
            "piece length": 16384,
            pieces: hashes,
            files: [
              { length: 20_000, path: [Buffer.from("ok.bin")] },
              { length: 20_000, path: path.map((c) => Buffer.from(c)) }
            ]
          })
          const infoHash = InfoHash.ofInfo(info)
          const seeder = yield* MetadataLiar.make({ infoHash: InfoHash.toBytes(infoHash), info, lie: "none" })
          const magnet = Magnet.format({ infoHash, trackers: [], peers: [], webSeeds: [] })

          const start = Date.now()
          const error = yield* failure(magnet, dst, [seeder.address])
          const millis = Date.now() - start
          assert.strictEqual(error._tag, "TorrentError")
          assert.match(error.message, /the fetched metadata: /)
          assert.match(error.message, unsafe.problem)
          assert.include(error.message, shown(path), "the error names the path")
          assert.isAtLeast(seeder.stats.requests, 1, "the metadata was fetched from the peer")
          assert.deepStrictEqual(snapshot(root, [dst]), before, "something outside the download folder changed")
          assert.deepStrictEqual(
            Fs.readdirSync(dst).filter((f) => f !== ".effect-torrent"),
            [],
            "nothing was created inside either"
          )
          record(`refused ${millis} ms after adding: "${error.message.replaceAll(root, "…")}"; nothing created outside`)
        }),
      60_000
    )
  }

  it.live(
    "the CLI refuses .torrent files with such paths: exit 1, one line naming the path; nothing written",
    () =>
      Effect.gen(function*() {
        const { before, dst, root } = yield* folders("escape-cli")
        // (In the name, name.utf-8 and path.utf-8 too: test/protocol/ checks those fixtures against Metainfo.decode.)
        const fixtures = ["dotdot", "slash", "backslash", "drive", "drive-path", "nul"].map((form) =>
          `unsafe-path-${form}.torrent`
        )
        const lines = yield* Effect.forEach(fixtures, (fixture) =>
          Effect.gen(function*() {
            const file = join("test/fixtures/metainfo", fixture)
            const child = yield* ourCli(`effect-torrent ${fixture}`, [
              file,
              "-o",
              dst,
              "--no-dht",
              "--no-lpd",
              "--quiet",
              "--port",
              "0"
            ])
            assert.strictEqual(yield* exitOf(child, 30_000), 1, child.output())
            const output = child.output().trim().split("\n")
            assert.strictEqual(output.length, 1, `one line, not:\n${child.output()}`)
            assert.match(output[0]!, /^effect-torrent: .*(path|name)/)
            return output[0]!
          }).pipe(Effect.scoped), { concurrency: 3 })
        // Each names the offending component: "..", "/etc/passwd", "..\\..\\windows", "C:", "C:evil.exe", "evil\0.txt".
        for (
          const [i, bad] of ["..", "/etc/passwd", "..\\\\..\\\\windows", "C:", "C:evil.exe", "evil\\u0000.txt"]
            .entries()
        ) {
          assert.include(lines[i], bad, fixtures[i])
        }
        assert.deepStrictEqual(snapshot(root, [dst]), before)
        assert.deepStrictEqual(Fs.readdirSync(dst), [])
        record(
          `${fixtures.length} torrents (file paths with .., /, \\, C:, C:x, NUL) refused with exit 1, e.g. "${
            lines[0]
          }"`
        )
      }),
    120_000
  )

  for (const unsafe of escapes) {
    it.live(
      `a Metainfo built in code with ${unsafe.label} in a file path: the disk writer refuses it before any data is requested`,
      () =>
        Effect.gen(function*() {
          const { before, dst, outside, root } = yield* folders("escape-library")
          const src = join(root, "src")
          yield* writeTree(src, [
            { path: "folder/ok.bin", size: 20_000 },
            { path: "folder/sub/data.bin", size: 20_000 }
          ])
          const { meta } = yield* createWithCreateTorrent(join(src, "folder"), join(root, "folder.torrent"), {
            pieceLength: 16384,
            announce: []
          })
          // Metainfo.decode would refuse the path: this is a library user's own Metainfo, unchecked.
          const path = unsafe.path(outside)
          const hostile: Metainfo.Metainfo = {
            ...meta,
            files: meta.files.map((file, i) => (i === 1 ? { ...file, path: ["folder", ...path] } : file))
          }
          const seeder = yield* FakeSeeder.make({ meta, data: torrentBytes(src, meta) })
          const error: TorrentError = yield* failure(hostile, dst, [seeder.address])
          assert.strictEqual(error.disk?.reason, "UnsafePath")
          assert.match(error.message, /refusing to write /)
          assert.match(error.message, unsafe.problem)
          assert.include(error.message, shown(path), "the error names the path")
          assert.notInclude(error.message, "\0", "the error prints a NUL")
          assert.strictEqual(seeder.stats.blocksServed, 0, "data was requested")
          assert.deepStrictEqual(snapshot(root, [dst, src, join(root, "folder.torrent")]), before)
          assert.deepStrictEqual(Fs.readdirSync(dst).filter((f) => f !== ".effect-torrent"), [])
          record(`refused: "${error.message.replaceAll(root, "…")}"; 0 blocks downloaded, nothing created outside`)
        }),
      60_000
    )
  }
})

describe("hostile files › symlinks in the download folder", () => {
  const cases: ReadonlyArray<{
    readonly label: string
    /** The torrent's files (the first path component is its name), and the symlink to plant: at `dst/<at>`, to `outside/<to>`. */
    readonly files: ReadonlyArray<string>
    readonly at: string
    readonly to: string
  }> = [
    { label: "to a folder outside", files: ["folder/victim.bin", "folder/new.bin"], at: "folder", to: "dir" },
    { label: "to a file outside", files: ["victim.bin"], at: "victim.bin", to: "victim.bin" },
    { label: "to a file outside that does not exist yet (dangling)", files: ["new.bin"], at: "new.bin", to: "new.bin" },
    {
      label: "to a folder outside that does not exist yet (dangling)",
      files: ["folder/new.bin"],
      at: "folder",
      to: "newdir"
    }
  ]
  for (const c of cases) {
    it.live(
      `a symlink ${c.label}: the download fails with a clear error and writes nothing outside`,
      () =>
        Effect.gen(function*() {
          const { dst, outside, root } = yield* folders("symlink")
          const src = join(root, "src")
          yield* writeTree(src, c.files.map((path) => ({ path, size: 50_000 })))
          const input = join(src, c.files[0]!.split("/")[0]!)
          const { meta } = yield* createWithCreateTorrent(input, join(root, "t.torrent"), {
            pieceLength: 16384,
            announce: []
          })
          Fs.symlinkSync(join(outside, c.to), join(dst, c.at))
          const before = snapshot(outside)
          const seeder = yield* FakeSeeder.make({ meta, data: torrentBytes(src, meta) })

          const error = yield* failure(meta, dst, [seeder.address])
          assert.strictEqual(error.disk?.reason, "UnsafePath")
          assert.match(error.message, /refusing to write .*: a symlink leads outside the download folder \(to /)
          assert.include(error.message, join(dst, c.at), "the error names the path")
          assert.strictEqual(seeder.stats.blocksServed, 0)
          assert.deepStrictEqual(snapshot(outside), before, "something outside the download folder changed")
          record(`refused: "${error.message.replaceAll(root, "…")}"; outside unchanged`)
        }),
      60_000
    )
  }
})

/**
 * The attacker of the race, on a thread of its own so it runs while the disk
 * writer's opens are in flight: renames `sub` aside, puts a symlink to
 * `target` in its place, removes it and renames the folder back, as fast as
 * it can, until `state[0]` is set (`state[1]` counts the symlinks planted).
 * When the writer made a new `sub` in between, the old one stays aside
 * (`sub.aside-<n>`) and the new one is swapped next.
 */
const swapper = `
const Fs = require("node:fs")
const { sub, target, state } = require("node:worker_threads").workerData
for (let n = 0; Atomics.load(state, 0) === 0; n++) {
  const aside = sub + ".aside-" + n
  try { Fs.renameSync(sub, aside) } catch { continue }
  try { Fs.symlinkSync(target, sub); Atomics.add(state, 1, 1); Fs.unlinkSync(sub) } catch {}
  try { Fs.renameSync(aside, sub) } catch {}
}
`

describe("hostile files › symlink races", () => {
  // Linux only: elsewhere (no /proc/self/fd) a file can still be created outside while a swap lasts (see SafeOpen).
  it.live.skipIf(process.platform !== "linux")(
    "a folder swapped for a symlink to outside while its files are written: nothing is created outside; each write lands inside or is refused",
    () =>
      Effect.gen(function*() {
        const { dst, outside, root } = yield* folders("symlink-race")
        const src = join(root, "src")
        // One piece per file, so each write opens (creates) one file in the swapped folder.
        const files = 400
        const pieceLength = 16384
        yield* writeTree(
          src,
          Array.from({ length: files }, (_, i) => ({ path: `t/sub/f-${i}.bin`, size: pieceLength }))
        )
        const { meta } = yield* createWithCreateTorrent(join(src, "t"), join(root, "t.torrent"), {
          pieceLength,
          announce: []
        })
        const data = torrentBytes(src, meta)
        const sub = join(dst, "t", "sub")
        Fs.mkdirSync(sub, { recursive: true })
        const before = snapshot(outside)

        const state = new Int32Array(new SharedArrayBuffer(8))
        const outcomes = yield* Effect.gen(function*() {
          const disk = yield* DiskWriter.make(meta, { downloadDir: dst })
          yield* disk.prepare
          yield* Effect.acquireRelease(
            Effect.sync(() =>
              new Worker(swapper, { eval: true, workerData: { sub, target: join(outside, "dir"), state } })
            ),
            (worker) =>
              Effect.promise(() => {
                Atomics.store(state, 0, 1)
                return once(worker, "exit")
              })
          )
          return yield* Effect.forEach(
            meta.files.keys(),
            (i) => disk.write(i, data.subarray(i * pieceLength, (i + 1) * pieceLength)).pipe(Effect.result)
          )
        }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, PieceWorker.layer]))
        const swaps = state[1]!

        assert.deepStrictEqual(snapshot(outside), before, "something was created outside the download folder")
        const refused = outcomes.flatMap((
          outcome,
          i
        ) => (Result.isFailure(outcome) ? [{ i, error: outcome.failure }] : []))
        for (const { error } of refused) assert.strictEqual(error.reason, "UnsafePath", error.message)
        assert.isAbove(swaps, 100, "the swapper hardly ran")

        // The attack over, the folders set aside are put back and the refused pieces written again: all land in place.
        if (Fs.lstatSync(sub, { throwIfNoEntry: false })?.isSymbolicLink()) Fs.unlinkSync(sub)
        Fs.mkdirSync(sub, { recursive: true })
        for (const aside of Fs.readdirSync(join(dst, "t")).filter((name) => name.startsWith("sub.aside-"))) {
          for (const file of Fs.readdirSync(join(dst, "t", aside))) {
            Fs.renameSync(join(dst, "t", aside, file), join(sub, file))
          }
          Fs.rmdirSync(join(dst, "t", aside))
        }
        yield* Effect.gen(function*() {
          const disk = yield* DiskWriter.make(meta, { downloadDir: dst })
          for (const { i } of refused) yield* disk.write(i, data.subarray(i * pieceLength, (i + 1) * pieceLength))
        }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, PieceWorker.layer]))
        assert.deepStrictEqual(piecesOnDisk(dst, meta), meta.files.map(() => true))

        // Refused by the open, not the path check before it: the race was lost by the check, caught by the open.
        const lost = refused.filter(({ error }) => !error.message.includes("a symlink leads outside"))
        record(
          `${swaps} symlinks swapped in while ${files} files were written: ${
            files - refused.length
          } opened and written inside, ` +
            `${refused.length - lost.length} refused by the path check, ${lost.length} by the open` +
            (lost.length > 0 ? ` (e.g. "${lost[0]!.error.message.replaceAll(root, "…")}")` : "") +
            ", 0 files created outside"
        )
      }),
    120_000
  )
})

/** Heap and array-buffer bytes in use now. */
const memory = () => {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

const bombs: ReadonlyArray<{
  readonly label: string
  readonly file: string
  readonly bytes: () => Buffer
  readonly problem: RegExp
  /** What the CLI says, if it is tried there (it refuses an oversized file before decoding it). */
  readonly cli?: RegExp
}> = [
  {
    label: "1,000,000 nested lists",
    file: "deep.torrent",
    bytes: () => Buffer.concat([Buffer.alloc(1_000_000, "l"), Buffer.alloc(1_000_000, "e")]),
    problem: /nest/,
    cli: /invalid bencode at byte 100: nesting deeper than 100/
  },
  {
    label: "3,400,000 integers (10 MB, over the token limit)",
    file: "tokens.torrent",
    bytes: () => Buffer.concat([Buffer.from("l"), Buffer.alloc(3 * 3_400_000, "i0e"), Buffer.from("e")]),
    problem: /token/
  },
  {
    label: "5,000,000 empty dictionaries",
    file: "dicts.torrent",
    bytes: () => Buffer.concat([Buffer.from("l"), Buffer.alloc(2 * 5_000_000, "de"), Buffer.from("e")]),
    problem: /token/,
    cli: /invalid bencode at byte \d+: more than 3000000 tokens/
  },
  {
    label: "a string declaring 99,999,999,999 bytes",
    file: "huge-string.torrent",
    bytes: () => Buffer.from("d4:info99999999999:abce"),
    problem: /string/,
    cli: /invalid bencode at byte 7: string of 99999999999 bytes runs past the end/
  },
  {
    label: "a string declaring 10,000,000 bytes with 3 given",
    file: "short-string.torrent",
    bytes: () => Buffer.from("d4:info10000000:abce"),
    problem: /string/
  },
  {
    label: "an integer of 1,000,000 digits",
    file: "long-integer.torrent",
    bytes: () => Buffer.concat([Buffer.from("i"), Buffer.alloc(1_000_000, "9"), Buffer.from("e")]),
    problem: /integer/
  },
  {
    label: "11 MiB of input",
    file: "big.torrent",
    bytes: () => Buffer.alloc(11 * 1024 * 1024, "l"),
    problem: /limit/,
    cli: /11534336 bytes is too large for a \.torrent file/
  }
]

describe("bencode bombs", () => {
  for (const bomb of bombs) {
    it(`${bomb.label}: a BencodeError within the limits, in bounded time and memory`, () => {
      const bytes = bomb.bytes()
      const heapBefore = memory()
      const start = performance.now()
      const result = Metainfo.decode(bytes)
      const millis = performance.now() - start
      const growth = memory() - heapBefore
      assert.isTrue(Result.isFailure(result), "a bomb decoded")
      const error = Result.isFailure(result) ? result.failure : undefined
      assert.strictEqual(error?._tag, "MetainfoError")
      assert.strictEqual(error?.problem, "Bencode")
      assert.match(error!.message, bomb.problem)
      assert.isBelow(millis, 5000)
      assert.isBelow(growth, 256 * 1024 * 1024)
      record(`${bytes.length} bytes: "${error!.message}" in ${millis.toFixed(0)} ms, heap +${mib(Math.max(0, growth))}`)
    })
  }

  it.live("the CLI's `info` on each bomb: exit 1 with one clear line", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("bombs")
      const lines = yield* Effect.forEach(
        bombs.filter((bomb) => bomb.cli !== undefined),
        (bomb) =>
          Effect.gen(function*() {
            const file = join(dir, bomb.file)
            Fs.writeFileSync(file, bomb.bytes())
            const start = Date.now()
            const child = yield* ourCli(`effect-torrent info ${bomb.file}`, ["info", file])
            assert.strictEqual(yield* exitOf(child, 30_000), 1, child.output())
            const output = child.output().trim().split("\n")
            assert.strictEqual(output.length, 1, `one line, not:\n${child.output()}`)
            assert.match(output[0]!, /^effect-torrent: /)
            assert.match(output[0]!, bomb.cli!)
            return `${bomb.file}: "${output[0]!.replace(dir, "…")}" (${Date.now() - start} ms)`
          }).pipe(Effect.scoped),
        { concurrency: 2 }
      )
      record(lines.join("; "))
    }), 120_000)
})
