/**
 * The event stream, from a real download over loopback: an honest seeder and
 * one that corrupts every block, a tracker nobody answers at. The manager's
 * stream tells, in order of happening: the peers connecting, each piece
 * verified once, the hash failure with the corrupt peer named, the tracker
 * failing, the state reaching "complete", and the peers leaving with a typed
 * reason once the torrent stops.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { join } from "node:path"
import { keyOf } from "../../src/peer/PeerEvent.ts"
import type { ManagerEvent } from "../../src/TorrentManager.ts"
import type { TorrentEvent } from "../../src/torrent/TorrentEvents.ts"
import * as FakeSeeder from "../util/FakeSeeder.ts"
import { sameBytes, sourceTorrent } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"
import { freePort } from "../util/Swarm.ts"

const ofTag = <T extends TorrentEvent["_tag"]>(events: ReadonlyArray<ManagerEvent>, tag: T) =>
  events.flatMap((e) => (e.event._tag === tag ? [e.event as Extract<TorrentEvent, { _tag: T }>] : []))

describe("TorrentManager events", () => {
  it.live(
    "a download's events: peers, pieces verified, a hash failure naming its sender, the tracker failing, states",
    () =>
      Effect.gen(function*() {
        const { data, dst, meta, src } = yield* sourceTorrent("events", 2 * 1024 * 1024 + 99, 64 * 1024)
        // A tracker URL where nothing listens: every announce fails.
        const deadTracker = `http://127.0.0.1:${yield* freePort}/announce`
        const torrent = { ...meta, announce: [[deadTracker]] }
        const honest = yield* FakeSeeder.make({ meta, data, bytesPerSecond: 4 * 1024 * 1024 })
        // Corrupts every block: each piece it sends fails (and it is banned at the first).
        const liar = yield* FakeSeeder.make({ meta, data, corrupt: true })
        const { manager } = yield* startManager(dst)
        const events: Array<ManagerEvent> = []
        const collector = yield* manager.subscribe.pipe(
          Effect.flatMap((stream) => stream.pipe(Stream.runForEach((e) => Effect.sync(() => events.push(e))))),
          Effect.forkScoped
        )
        // Subscribed before the torrent exists: nothing of it can be missed.
        yield* Effect.yieldNow
        const handle = yield* manager.add(torrent, { peers: [liar.address, honest.address] })
        yield* handle.completed.pipe(within(60_000, "the download"))
        assert.isTrue(sameBytes(join(src, "events.bin"), join(dst, "events.bin")))
        yield* manager.remove(meta.infoHash)
        yield* Effect.yieldNow
        yield* Fiber.interrupt(collector)

        assert.isTrue(events.every((e) => e.infoHash === meta.infoHash))
        const verified = ofTag(events, "PieceVerified").map((e) => e.index).sort((a, b) => a - b)
        assert.deepStrictEqual(
          verified,
          Array.from({ length: meta.pieceCount }, (_, i) => i),
          "each piece verified once"
        )
        const connected = ofTag(events, "PeerConnected").map((e) => e.peer)
        assert.includeMembers(connected, [keyOf(honest.address)])
        const failed = ofTag(events, "HashFailed")
        assert.isAbove(failed.length, 0, "the liar's pieces failed")
        for (const e of failed) {
          assert.include(e.peers, keyOf(liar.address), `piece ${e.index}: the failure names the liar`)
        }
        assert.isAbove(ofTag(events, "TrackerFailed").length, 0, "the dead tracker's failure is an event")
        const warnings = ofTag(events, "Warning").map((e) => e.detail)
        assert.isTrue(
          failed.every((e) => warnings.some((w) => w.startsWith(`piece ${e.index} failed its hash check`))),
          "each hash failure is a warning too"
        )
        const states = ofTag(events, "StateChanged").map((e) => e.state)
        assert.include(states, "complete")
        assert.strictEqual(
          states.indexOf("downloading") < states.indexOf("complete"),
          true,
          `states: ${states.join(", ")}`
        )
        const left = ofTag(events, "PeerDisconnected")
        assert.isAbove(left.length, 0)
        for (const e of left) assert.isString(e.detail)
      }).pipe(Effect.scoped),
    90_000
  )
})
