/**
 * Peers that hog a magnet link's metadata requests (BEP 9), over real TCP
 * against the real engine. The hog (MetadataLiar) is dialled first; an
 * honest webtorrent@1.9.7 seeder sits behind a gate that opens once the hog
 * has been asked (or dropped). A hog holding every piece must not delay the
 * metadata once the honest seeder is there; a hog that wastes requests (lets
 * them expire, rejects them, sends wrong-sized pieces) is hung up on, as seen
 * from its side of the wire.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import { requestTimeoutMillis } from "../../src/torrent/MetadataAssembly.ts"
import { maxWasted } from "../../src/torrent/MetadataFetcher.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { createWithCreateTorrent, tempDir, writeTree } from "../util/Files.ts"
import { managerLayer, within } from "../util/Leecher.ts"
import * as MetadataLiar from "../util/MetadataLiar.ts"
import { record } from "../util/SecurityResults.ts"
import { waitUntil, webtorrentSeeder } from "../util/Swarm.ts"

/**
 * Fetches the metadata with the hog dialled first; the gate to the honest
 * seeder opens once `openWhen` holds of the hog. Returns the hog's stats as
 * they were when the metadata came, and how long after the gate opened.
 */
const hogged = (
  lie: MetadataLiar.Lie,
  openWhen: { readonly what: string; readonly check: (hog: MetadataLiar.Stats) => boolean }
) =>
  Effect.gen(function*() {
    const root = yield* tempDir(`hog-${lie}`)
    const src = join(root, "src")
    // 1,100 pieces: 22,000 bytes of hashes, so the metadata comes in two pieces.
    yield* writeTree(src, [{ path: "data.bin", size: 1100 * 16 * 1024 - 99 }])
    const torrentFile = join(root, "data.torrent")
    const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), torrentFile, {
      pieceLength: 16 * 1024,
      announce: []
    })
    const hog = yield* MetadataLiar.make({ infoHash: InfoHash.toBytes(meta.infoHash), info: meta.info, lie })
    const honest = yield* webtorrentSeeder({ torrent: torrentFile, dir: src, trackers: false })
    const gate = yield* MetadataLiar.gate({ host: "127.0.0.1", port: honest.port })
    const magnet = Magnet.format({ infoHash: meta.infoHash, trackers: [], peers: [], webSeeds: [] })

    return yield* Effect.gen(function*() {
      const manager = yield* TorrentManager
      const handle = yield* manager.add(magnet, { peers: [hog.address, gate.address] })
      yield* waitUntil(() => openWhen.check(hog.stats), {
        timeoutMillis: 30_000,
        message: () => `the hog (${lie}) was not ${openWhen.what}: ${JSON.stringify(hog.stats)}`
      })
      gate.open()
      const opened = Date.now()
      const fetched = yield* handle.metadata.pipe(within(30_000, "the metadata"))
      const millis = Date.now() - opened
      assert.strictEqual(fetched.infoHash, meta.infoHash)
      return { hog: structuredClone(hog.stats), millis }
    }).pipe(Effect.provide(managerLayer(join(root, "dst"), { handshakeTimeoutMillis: 30_000 })))
  })

const asked = (requests: number) => ({
  what: `asked ${requests} pieces`,
  check: (hog: MetadataLiar.Stats) => hog.requests >= requests
})
const dropped = { what: "hung up on", check: (hog: MetadataLiar.Stats) => hog.closedByPeer > 0 }

describe("hostile peers › metadata hogs", () => {
  it.live(
    "a peer that never answers, asked for both pieces first: the metadata comes from the honest seeder without waiting for it",
    () =>
      Effect.gen(function*() {
        const { hog, millis } = yield* hogged("silent", asked(2))
        assert.strictEqual(hog.requests, 2, "the hog was not asked again: its requests had not expired")
        assert.isBelow(millis, requestTimeoutMillis, "the metadata did not wait for the hog's requests to expire")
        record(
          `the hog held both pieces; metadata ${millis} ms after the honest seeder became reachable ` +
            `(the hog's requests expire after ${requestTimeoutMillis} ms)`
        )
      }),
    60_000
  )

  it.live(
    "a peer that trickles its answers (a byte every 2 s) is asked again when its requests expire, then dropped",
    () =>
      Effect.gen(function*() {
        const { hog, millis } = yield* hogged("trickle", dropped)
        const after = hog.closedByPeerAfterMillis[0]!
        assert.strictEqual(hog.requests, 4, "both pieces, asked again once when they expired")
        assert.isAtLeast(after, 2 * requestTimeoutMillis, "not dropped before its second requests expired")
        assert.isBelow(after, 3 * requestTimeoutMillis)
        record(
          `dropped ${after} ms after connecting (${hog.requests} requests unanswered); metadata ${millis} ms after the honest seeder became reachable`
        )
      }),
    60_000
  )

  it.live("a peer that rejects every request is dropped", () =>
    Effect.gen(function*() {
      const { hog, millis } = yield* hogged("reject", dropped)
      const after = hog.closedByPeerAfterMillis[0]!
      assert.isAtLeast(hog.requests, maxWasted, "not dropped before it had wasted that many")
      assert.isBelow(after, requestTimeoutMillis, "dropped for its rejects, not after a timeout")
      record(
        `dropped ${after} ms after connecting, asked ${hog.requests} times, rejecting each; metadata ${millis} ms after the honest seeder became reachable`
      )
    }), 60_000)

  it.live("a peer that sends a wrong-sized piece is banned at its first answer", () =>
    Effect.gen(function*() {
      const { hog, millis } = yield* hogged("wrong-size", dropped)
      const after = hog.closedByPeerAfterMillis[0]!
      assert.isAtMost(hog.requests, 2)
      // One dial, never again: the encrypted attempt (the engine's default `prefer`), refused, then plain.
      assert.deepStrictEqual([hog.connections, hog.refused], [2, 1], "never dialled again")
      assert.isBelow(after, requestTimeoutMillis)
      record(`banned ${after} ms after connecting; metadata ${millis} ms after the honest seeder became reachable`)
    }), 60_000)
})
