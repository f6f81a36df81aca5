/**
 * Files as Streams while they download, on real sockets and files: a range of
 * the last file read from a rate-limited seeder comes byte for byte, its
 * pieces first; a file past the end, a bad range and a deselected file are
 * typed errors; an interrupted reader does not hold the download up. (That
 * its priority is withdrawn is checked on the Orchestrator.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { join } from "node:path"
import type { ManagerEvent } from "../../src/TorrentManager.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { createWithCreateTorrent, tempDir, torrentBytes, writeTree } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"

const size = 2 * 1024 * 1024
const pieceLength = 64 * 1024

const setup = (label: string) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, ["a.bin", "b.bin", "c.bin"].map((name) => ({ path: `set/${name}`, size })))
    const { meta } = yield* createWithCreateTorrent(join(src, "set"), join(root, "set.torrent"), {
      pieceLength,
      announce: []
    })
    const data = torrentBytes(src, meta)
    // 2 MiB/s: the whole torrent takes 3 s, so what comes first is the picker's choice.
    const seeder = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 2 * 1024 * 1024 })
    const { manager } = yield* startManager(join(root, "dst"))
    return { data, manager, meta, seeder }
  })

const collect = (stream: Stream.Stream<Uint8Array, unknown>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Buffer.concat([...chunks]))

describe("file streams", () => {
  it.live(
    "a range of the last file, read while it downloads: the right bytes, its pieces first",
    () =>
      Effect.gen(function*() {
        const { data, manager, meta, seeder } = yield* setup("stream")
        const verified: Array<number> = []
        const events = yield* manager.subscribe
        yield* events.pipe(
          Stream.runForEach((e: ManagerEvent) =>
            Effect.sync(() => e.event._tag === "PieceVerified" && verified.push(e.event.index))
          ),
          Effect.forkScoped
        )
        const handle = yield* manager.add(meta, { peers: [seeder.address], seed: true })
        const start = 300_000 // pieces 68 to 86 of 96
        const end = 1_500_000
        const bytes = yield* collect(handle.file(2).stream({ start, end })).pipe(within(30_000, "the stream"))
        const offset = meta.files[2]!.offset
        assert.strictEqual(Buffer.compare(bytes, data.subarray(offset + start, offset + end)), 0, "byte for byte")
        const wanted = new Set<number>()
        for (
          let p = Math.floor((offset + start) / pieceLength);
          p <= Math.floor((offset + end - 1) / pieceLength);
          p++
        ) {
          wanted.add(p)
        }
        // Without priority the range would be complete only near the end (pieces at random, then rarest first).
        const others = verified.filter((p) => !wanted.has(p))
        assert.isBelow(
          others.length,
          16,
          `pieces of other data verified before the range was read: ${others.join(", ")}`
        )
        yield* handle.completed.pipe(within(30_000, "the rest"))
        const whole = yield* collect(handle.file(0).stream())
        assert.strictEqual(Buffer.compare(whole, data.subarray(0, size)), 0, "a whole file, once there")
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "bad input is a typed error naming it; a deselected file fails; an interrupted reader holds nothing up",
    () =>
      Effect.gen(function*() {
        const { manager, meta, seeder } = yield* setup("stream-errors")
        const handle = yield* manager.add(meta, { peers: [seeder.address], selected: [0, 1] })
        const problem = (stream: Stream.Stream<Uint8Array, { readonly problem: string }>) =>
          Effect.map(Effect.flip(Stream.runDrain(stream)), (e) => e.problem)
        assert.strictEqual(yield* problem(handle.file(7).stream()), "NoSuchFile")
        assert.strictEqual(yield* problem(handle.file(0).stream({ start: 10, end: size + 1 })), "Range")
        assert.strictEqual(yield* problem(handle.file(2).stream()), "Deselected")
        // A reader of file 1 that goes away: the download still completes (its window does not hold anything up).
        const reader = yield* Effect.forkChild(Stream.runDrain(handle.file(1).stream()))
        yield* Effect.sleep(50)
        yield* Fiber.interrupt(reader)
        yield* handle.completed.pipe(within(30_000, "the download"))
      }).pipe(Effect.scoped),
    60_000
  )
})
