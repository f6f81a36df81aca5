/**
 * Resuming: a download stopped midway — the library's fiber interrupted, or
 * the CLI process killed with SIGKILL — starts again in the same folder,
 * completes with the right bytes, and fetches only what was not verified
 * before the stop. Served bytes and pieces are counted by the seeder
 * (FakeSeeder, throttled so that there is a "midway" to stop at).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { join } from "node:path"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { bytesOf, indexes, piecesOnDisk, resumePieces, sameBytes, sourceTorrent } from "../util/Files.ts"
import { download, startManager } from "../util/Leecher.ts"
import { cliDownload, waitUntil } from "../util/Swarm.ts"

describe("resuming a download", () => {
  it.live(
    "after the library's fiber is interrupted midway, downloads only what was not verified",
    () =>
      Effect.gen(function*() {
        const { data, dst, meta, src } = yield* sourceTorrent("interrupted", 12 * 1024 * 1024 + 777, 64 * 1024)

        // Run 1: stopped by interrupting its fiber once more than 30% is verified.
        const seeder1 = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 2 * 1024 * 1024 })
        const run1 = yield* startManager(dst)
        const handle1 = yield* run1.manager.add(meta, { peers: [seeder1.address] })
        const midway = yield* handle1.progress.changes.pipe(
          Stream.filter((p) => p.done > 0.3 * meta.length),
          Stream.runHead,
          Effect.timeoutOrElse({ duration: 30_000, orElse: () => Effect.die(new Error("run 1 never got past 30%")) })
        )
        yield* Fiber.interrupt(run1.fiber)
        assert.isBelow(midway._tag === "Some" ? midway.value.done : Infinity, meta.length, "stopped before the end")

        // What run 1 left: pieces that hash right on disk, and the ones its resume file records.
        const onDisk = piecesOnDisk(dst, meta)
        const recorded = resumePieces(dst, meta)
        assert.isDefined(recorded, "the resume file was saved when the torrent stopped")
        for (const i of indexes(recorded!)) {
          assert.isTrue(onDisk[i], `the resume file records piece ${i}, which is not on disk`)
        }
        const verified1 = bytesOf(meta, onDisk)
        assert.isAbove(verified1, 0.3 * meta.length)
        assert.isBelow(verified1, meta.length)

        // Run 2, from a fresh seeder: completes, and downloads none of what was verified.
        const seeder2 = yield* FakeSeeder.make({ meta, data })
        const observed = yield* download(meta, { downloadDir: dst, peers: [seeder2.address] })
        assert.isTrue(sameBytes(join(src, "interrupted.bin"), join(dst, "interrupted.bin")), "the file is correct")
        const downloaded2 = observed.last().downloaded
        assert.isAtMost(downloaded2, meta.length - verified1, `run 2 downloaded ${downloaded2} bytes`)
        assert.isAtMost(seeder2.stats.bytesServed, meta.length - verified1)
        const refetched = indexes(onDisk).filter((i) => seeder2.stats.piecesServed.has(i))
        assert.deepStrictEqual(refetched, [], "pieces verified in run 1 were downloaded again")
      }),
    60_000
  )

  it.live(
    "after the CLI is killed with SIGKILL midway, the restarted CLI downloads only what was not on disk",
    () =>
      Effect.gen(function*() {
        const { data, dst, meta, src, torrentFile } = yield* sourceTorrent("killed", 64 * 1024 * 1024 + 99, 256 * 1024)
        const cli = (seeder: FakeSeeder.FakeSeeder) =>
          cliDownload("effect-torrent CLI", torrentFile, dst, seeder.address)

        // Run 1: killed once the seeder has sent 40% of the torrent.
        const seeder1 = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 16 * 1024 * 1024 })
        const run1 = yield* cli(seeder1)
        yield* waitUntil(() => seeder1.stats.bytesServed >= 0.4 * meta.length || run1.process.exitCode !== null, {
          timeoutMillis: 30_000,
          message: () => `the CLI got ${seeder1.stats.bytesServed} bytes in 30 s:\n${run1.output()}`
        })
        assert.isNull(run1.process.exitCode, `the CLI ended before it was killed:\n${run1.output()}`)
        run1.process.kill("SIGKILL")
        const exit1 = yield* Effect.promise(() => run1.exit)
        assert.strictEqual(exit1, "SIGKILL")
        assert.isBelow(seeder1.stats.bytesServed, meta.length)

        // What run 1 left on disk, hashed here.
        const onDisk = piecesOnDisk(dst, meta)
        const before = bytesOf(meta, onDisk)
        assert.isAbove(before, 0.2 * meta.length, "run 1 wrote verified pieces before it was killed")
        assert.isBelow(before, meta.length)
        // Its last resume file (saved every 10 s, not at the kill) claims nothing that is not there.
        for (const i of indexes(resumePieces(dst, meta) ?? [])) {
          assert.isTrue(onDisk[i], `the resume file records piece ${i}`)
        }

        // Run 2: completes from a fresh seeder, which sends none of those pieces.
        const seeder2 = yield* FakeSeeder.make({ meta, data })
        const run2 = yield* cli(seeder2)
        const exit2 = yield* Effect.promise(() => run2.exit).pipe(
          Effect.timeoutOrElse({
            duration: 60_000,
            orElse: () => Effect.die(new Error(`run 2 did not finish:\n${run2.output()}`))
          })
        )
        assert.strictEqual(exit2, 0, run2.output())
        assert.isTrue(sameBytes(join(src, "killed.bin"), join(dst, "killed.bin")), "the file is correct")
        assert.isAtMost(seeder2.stats.bytesServed, meta.length - before, "run 2 fetched verified pieces again")
        const refetched = indexes(onDisk).filter((i) => seeder2.stats.piecesServed.has(i))
        assert.deepStrictEqual(refetched, [])
      }),
    120_000
  )
})
