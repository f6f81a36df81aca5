/**
 * Hostile disks and crashes, end to end against the real engine and CLI with
 * a FakeSeeder over loopback: a download that fills a real (tmpfs) disk, and
 * a CLI killed with SIGKILL at random moments, again and again. Each asserts
 * that no verified data is lost or fetched twice (pieces are hashed here,
 * independently of the engine, and the seeder counts what it served), and
 * that the download resumes to byte-identical data.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import { join } from "node:path"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import type { TorrentError } from "../../src/torrent/Torrent.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { bytesOf, indexes, piecesOnDisk, resumePieces, sameBytes, sourceTorrent } from "../util/Files.ts"
import { observe, startManager, within } from "../util/Leecher.ts"
import { record } from "../util/SecurityResults.ts"
import { cliDownload, exitOf, waitUntil } from "../util/Swarm.ts"

/** Every piece the resume file records hashes right on disk. */
const assertResumeTruthful = (dst: string, meta: Metainfo.Metainfo, onDisk: ReadonlyArray<boolean>) => {
  const recorded = indexes(resumePieces(dst, meta) ?? [])
  for (const i of recorded) assert.isTrue(onDisk[i], `the resume file records piece ${i}, which is not right on disk`)
  return recorded.length
}

/** The CLI downloading `torrentFile` into `dst` from `seeder`. */
const download = (torrentFile: string, dst: string, seeder: FakeSeeder.FakeSeeder, label: string) =>
  cliDownload(label, torrentFile, dst, seeder.address)

/** A tmpfs of `size` (e.g. "4m") mounted on `dir` (created), unmounted when the scope closes. */
const tmpfs = (dir: string, size: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      Fs.mkdirSync(dir, { recursive: true })
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir])
      return { resize: (to: string) => execFileSync("mount", ["-o", `remount,size=${to}`, dir]) }
    }),
    () => Effect.sync(() => execFileSync("umount", ["--lazy", dir]))
  )

const isRoot = process.getuid?.() === 0

describe("hostile disks", () => {
  it.live(
    "a full disk (4 MiB tmpfs, 12 MiB torrent): a NoSpace error, no verified piece lost, and it resumes once space is back",
    (ctx) =>
      Effect.gen(function*() {
        if (!isRoot) return ctx.skip("mounting a small tmpfs needs root (CI runs as root)")
        const { data, dst, meta, src, torrentFile } = yield* sourceTorrent("full", 12 * 1024 * 1024 + 333, 64 * 1024)
        const disk = yield* tmpfs(dst, "4m")

        // Run 1, the library: fails with a typed NoSpace error naming the file.
        const seeder1 = yield* FakeSeeder.make({ meta, data })
        const run1 = yield* startManager(dst)
        const handle = yield* run1.manager.add(meta, { peers: [seeder1.address] })
        const observed = yield* observe(handle)
        const error: TorrentError = yield* handle.completed.pipe(
          Effect.flip,
          within(30_000, "filling the disk", observed)
        )
        assert.strictEqual(error.disk?.reason, "NoSpace", error.message)
        assert.strictEqual(error.message, `full.bin: the disk is full writing ${join(dst, "full.bin")}`)
        const finished = yield* handle.finished.pipe(Effect.flip)
        assert.strictEqual(finished.disk?.reason, "NoSpace", "the handle's finished fails with it too")
        const progress = yield* handle.progress.get
        assert.strictEqual(progress.state, "stopped", "the progress shows the torrent stopped")

        const onDisk1 = piecesOnDisk(dst, meta)
        const verified1 = bytesOf(meta, onDisk1)
        assert.isAbove(verified1, 0, "pieces were written before the disk filled")
        assert.isBelow(verified1, 4 * 1024 * 1024)
        const recorded = assertResumeTruthful(dst, meta, onDisk1)

        // Run 2, the CLI, on the still full disk: exit 1 with one clear line; nothing verified is lost.
        const seeder2 = yield* FakeSeeder.make({ meta, data })
        const run2 = yield* download(torrentFile, dst, seeder2, "CLI on a full disk")
        assert.strictEqual(yield* exitOf(run2, 60_000), 1, run2.output())
        // Its log lines come first (pieces found on disk; the resume file could not be saved either).
        const lines = run2.output().trim().split("\n")
        const reported = lines.filter((line) => line.startsWith("effect-torrent: "))
        assert.deepStrictEqual(reported, [
          `effect-torrent: full.bin: the disk is full writing ${join(dst, "full.bin")}`
        ])
        assert.strictEqual(lines[lines.length - 1], reported[0])
        assert.notMatch(run2.output(), /^\s+at /m, "a stack trace")
        const onDisk2 = piecesOnDisk(dst, meta)
        for (const i of indexes(onDisk1)) {
          assert.isTrue(onDisk2[i], `piece ${i}, verified in run 1, is no longer right on disk`)
        }
        assertResumeTruthful(dst, meta, onDisk2)

        // Space is back: run 3 completes, byte-identical, without fetching any verified piece again.
        disk.resize("64m")
        const seeder3 = yield* FakeSeeder.make({ meta, data })
        const run3 = yield* download(torrentFile, dst, seeder3, "CLI once space is back")
        assert.strictEqual(yield* exitOf(run3, 60_000), 0, run3.output())
        assert.isTrue(sameBytes(join(src, "full.bin"), join(dst, "full.bin")), "the file is correct")
        const refetched = indexes(onDisk2).filter((i) => seeder3.stats.piecesServed.has(i))
        assert.deepStrictEqual(refetched, [], "verified pieces were downloaded again")
        record(
          `library: "${error.message.replace(dst, "…")}" (progress state "${progress.state}"), ` +
            `${verified1} bytes verified on disk (${
              recorded === 0
                ? "the resume file could not be saved on the full disk: the restart re-hashed"
                : `resume file: ${recorded} pieces, all right`
            }); ` +
            `CLI on the full disk: exit 1, "${reported[0]!.replace(dst, "…")}"; after remounting at 64 MiB: ` +
            `completed, byte-identical, ${seeder3.stats.bytesServed} of ${meta.length} bytes fetched, 0 verified pieces again`
        )
      }),
    120_000
  )

  it.live(
    "SIGKILL at 5 random moments: every restart resumes, no verified piece is fetched twice, the data is correct",
    () =>
      Effect.gen(function*() {
        const { data, dst, meta, src, torrentFile } = yield* sourceTorrent("killed", 48 * 1024 * 1024 + 77, 128 * 1024)
        // Reproducible: a failure message names the seed.
        const seed = Date.now() % 1_000_000
        let state = seed
        const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648)
        const runs: Array<string> = []

        for (let run = 1; run <= 5; run++) {
          yield* Effect.gen(function*() {
            const before = piecesOnDisk(dst, meta)
            const seeder = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 4 * 1024 * 1024 })
            const child = yield* download(torrentFile, dst, seeder, `CLI run ${run}`)
            yield* waitUntil(() => seeder.stats.blocksServed > 0 || child.process.exitCode !== null, {
              timeoutMillis: 30_000,
              message: () => `run ${run} (seed ${seed}) got no block in 30 s:\n${child.output()}`
            })
            const delay = Math.floor(random() * 1500)
            yield* Effect.sleep(delay)
            assert.isNull(
              child.process.exitCode,
              `run ${run} (seed ${seed}) ended before it was killed:\n${child.output()}`
            )
            child.process.kill("SIGKILL")
            assert.strictEqual(yield* exitOf(child, 10_000), "SIGKILL")

            const refetched = indexes(before).filter((i) => seeder.stats.piecesServed.has(i))
            assert.deepStrictEqual(refetched, [], `run ${run} (seed ${seed}) fetched pieces verified before it`)
            const after = piecesOnDisk(dst, meta)
            for (const i of indexes(before)) {
              assert.isTrue(after[i], `run ${run} (seed ${seed}) lost verified piece ${i}`)
            }
            assertResumeTruthful(dst, meta, after)
            runs.push(`${delay} ms: ${indexes(after).length}`)
          }).pipe(Effect.scoped)
        }

        const before = piecesOnDisk(dst, meta)
        const seeder = yield* FakeSeeder.make({ meta, data })
        const last = yield* download(torrentFile, dst, seeder, "CLI, last run")
        assert.strictEqual(yield* exitOf(last, 60_000), 0, last.output())
        assert.isTrue(sameBytes(join(src, "killed.bin"), join(dst, "killed.bin")), "the file is correct")
        assert.deepStrictEqual(
          indexes(before).filter((i) => seeder.stats.piecesServed.has(i)),
          [],
          "the last run fetched verified pieces"
        )
        assert.isAtMost(seeder.stats.bytesServed, meta.length - bytesOf(meta, before))
        record(
          `${meta.pieceCount} pieces; killed after the first block + (delay: pieces verified after the kill) ${
            runs.join(", ")
          }; ` +
            `last run fetched the ${
              meta.pieceCount - indexes(before).length
            } missing pieces; data byte-identical; 0 pieces fetched twice`
        )
      }),
    120_000
  )
})
