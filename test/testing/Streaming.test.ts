/**
 * Deadline piece picking in a whole swarm under TestClock (one seeder, one
 * leecher over a link of 2 MiB/s): what a reader of the data waits for comes
 * first, two readers are both served, in turns, and a reader that goes away
 * leaves its window to the others. The same on every run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import { Swarm } from "../../src/testing.ts"
import type { TorrentHandle } from "../../src/TorrentManager.ts"

const pieceLength = 64 * 1024
const link = { latencyMillis: 10, bytesPerSecond: 2 * 1024 * 1024 }

/** The pieces the leecher verified, in order (the seeder is host 10.0.0.1). */
const verifiedOrder = (run: Swarm.Outcome) =>
  run.events.flatMap((e) => (e.host !== Swarm.hostOf(0) && e.event._tag === "PieceVerified" ? [e.event.index] : []))

const pieces = (start: number, end: number) =>
  Array.from(
    { length: Math.ceil(end / pieceLength) - Math.floor(start / pieceLength) },
    (_, i) => Math.floor(start / pieceLength) + i
  )

/** Reads `range` of the leecher's file; what it read, once done. */
const read = (handle: TorrentHandle, range: { readonly start: number; readonly end: number }) =>
  Effect.map(Stream.runCollect(handle.file(0).stream(range)), (chunks) => Buffer.concat([...chunks]))

describe("file streams in a swarm (TestClock)", () => {
  it.live(
    "a reader's pieces come first; two readers take turns; the same run every time",
    () =>
      Effect.gen(function*() {
        const torrent = yield* Swarm.torrent({ size: 8 * 1024 * 1024, pieceLength })
        const a = { start: 5_000_000, end: 6_000_000 }
        const b = { start: 1_000_000, end: 2_000_000 }
        const swarm = Effect.gen(function*() {
          const readA = yield* Deferred.make<Buffer>()
          const readB = yield* Deferred.make<Buffer>()
          const run = yield* Swarm.run({
            torrent,
            seeders: 1,
            leechers: 1,
            link,
            during: ([leecher]) =>
              Effect.all([
                Effect.forkScoped(Deferred.into(read(leecher!, a).pipe(Effect.orDie), readA)),
                Effect.forkScoped(Deferred.into(read(leecher!, b).pipe(Effect.orDie), readB))
              ])
          })
          return { run, a: yield* Deferred.await(readA), b: yield* Deferred.await(readB) }
        })
        const first = yield* swarm
        assert.isTrue(first.a.equals(torrent.data.subarray(a.start, a.end)), "reader A's bytes")
        assert.isTrue(first.b.equals(torrent.data.subarray(b.start, b.end)), "reader B's bytes")
        const order = verifiedOrder(first.run)
        const wanted = new Set([...pieces(a.start, a.end), ...pieces(b.start, b.end)])
        // Both readers' 32 pieces come before any other (rarest first would spread them over all 128).
        assert.deepStrictEqual(
          order.slice(0, wanted.size).filter((p) => !wanted.has(p)),
          [],
          `order: ${order.join(" ")}`
        )
        // In turns: each reader has pieces among the first ten.
        const firstTen = order.slice(0, 10)
        assert.isTrue(firstTen.some((p) => pieces(a.start, a.end).includes(p)), `A among ${firstTen.join(" ")}`)
        assert.isTrue(firstTen.some((p) => pieces(b.start, b.end).includes(p)), `B among ${firstTen.join(" ")}`)
        const second = yield* swarm
        assert.deepStrictEqual(second.run.events, first.run.events, "the same run")
      }),
    60_000
  )

  it.live(
    "a reader that goes away leaves its window: the next reader's pieces come first",
    () =>
      Effect.gen(function*() {
        const torrent = yield* Swarm.torrent({ size: 8 * 1024 * 1024, pieceLength })
        const gone = { start: 6_000_000, end: 8 * 1024 * 1024 }
        const b = { start: 1_000_000, end: 2_000_000 }
        const run = yield* Swarm.run({
          torrent,
          seeders: 1,
          leechers: 1,
          link,
          during: ([leecher]) =>
            Effect.gen(function*() {
              // Interrupted before the clock moves: it never reads a byte, and must leave no priority behind.
              const reader = yield* Effect.forkScoped(read(leecher!, gone))
              yield* Effect.yieldNow
              yield* Fiber.interrupt(reader)
              yield* Effect.forkScoped(read(leecher!, b))
            })
        })
        const order = verifiedOrder(run)
        const bPieces = pieces(b.start, b.end)
        assert.deepStrictEqual(order.slice(0, bPieces.length).filter((p) => !bPieces.includes(p)), [], order.join(" "))
      }),
    60_000
  )
})
