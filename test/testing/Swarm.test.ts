/**
 * The test kit's swarm: ten whole managers (2 seeders, 8 leechers) under
 * TestClock download a few MiB from each other over links with latency and
 * a rate; three runs give the same event log, and every leecher ends with
 * the torrent's bytes. (Its speed, well under 2 s a run, is not asserted:
 * timed tests fail under load.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Swarm } from "../../src/testing.ts"

describe("Swarm", () => {
  it.live("10 peers download 4 MiB, with the same event log on every run", () =>
    Effect.gen(function*() {
      const torrent = yield* Swarm.torrent({ size: 4 * 1024 * 1024 + 1234, pieceLength: 64 * 1024 })
      const options = { torrent, seeders: 2, leechers: 8, link: { latencyMillis: 20, bytesPerSecond: 4 * 1024 * 1024 } }
      const runs = [yield* Swarm.run(options), yield* Swarm.run(options), yield* Swarm.run(options)]
      for (const run of runs) {
        assert.strictEqual(run.data.length, 8)
        for (const data of run.data) {
          assert.isTrue(Buffer.from(data).equals(torrent.data), "a leecher has the torrent's bytes")
        }
        assert.deepStrictEqual(run.events, runs[0].events)
        assert.strictEqual(run.millis, runs[0].millis)
      }
      const verified = runs[0].events.filter((e) => e.event._tag === "PieceVerified")
      assert.strictEqual(verified.length, 8 * torrent.meta.pieceCount, "each leecher verified each piece once")
    }), 60_000)

  // A peer that takes up our connection late (aria2c works through its accept queue three a second)
  // looks, from our side, like one far away: nothing comes back for a while.
  it.live(
    "a peer that answers 12 s after each message is reached with the default settings",
    () =>
      Effect.gen(function*() {
        const torrent = yield* Swarm.torrent({ size: 256 * 1024, pieceLength: 64 * 1024 })
        const run = yield* Swarm.run({ torrent, seeders: 1, leechers: 1, link: { latencyMillis: 6_000 } })
        assert.isTrue(Buffer.from(run.data[0]!).equals(torrent.data), "the leecher has the torrent's bytes")
      }),
    60_000
  )
})
