/**
 * IPv6 on ::1 with other implementations (BEP 7, BEP 32): an aria2c seeder
 * listening on ::1 only, found through a bittorrent-tracker@10 on [::1]
 * (its peers6) and through the IPv6 DHT alone (aria2c's node joins ours
 * there and announces the torrent; our downloader's node looks it up). Our
 * manager listens on ::1 only, so every byte comes over IPv6; the
 * connections' addresses say so too.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { join } from "node:path"
import type * as Metainfo from "../../src/protocol/Metainfo.ts"
import type { Settings } from "../../src/torrent/TorrentConfig.ts"
import { effectDht, eventually } from "../dht/fixtures.ts"
import { trackerServerOn } from "../tracker/fixtures.ts"
import { createWithCreateTorrent, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { startManager, within } from "../util/Leecher.ts"
import { aria2Seeder } from "../util/Swarm.ts"

const source = (label: string, announce: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const src = join(root, "src")
    yield* writeTree(src, [{ path: "data.bin", size: 1_000_003 }])
    const torrent = join(root, `${label}.torrent`)
    const { meta } = yield* createWithCreateTorrent(join(src, "data.bin"), torrent, {
      pieceLength: 32 * 1024,
      announce
    })
    return { root, src, dst: join(root, "dst"), torrent, meta }
  })

/** Downloads `meta` with a manager of its own listening on ::1; returns the peers it connected to. */
const downloadOverIpv6 = (meta: Metainfo.Metainfo, dst: string, settings: Partial<Settings> = {}) =>
  Effect.gen(function*() {
    const { manager } = yield* startManager(dst, { listenHost: "::1", ...settings })
    const handle = yield* manager.add(meta)
    const connected: Array<string> = []
    yield* handle.events.pipe(
      Stream.runForEach((event) => Effect.sync(() => event._tag === "PeerConnected" && connected.push(event.peer))),
      Effect.forkScoped
    )
    yield* handle.completed.pipe(within(60_000, "the download over IPv6"))
    return connected
  })

describe("IPv6 on ::1", () => {
  it.live(
    "from an aria2c seeder on ::1 found through a bittorrent-tracker on [::1] (peers6)",
    () =>
      Effect.gen(function*() {
        const tracker = yield* trackerServerOn("ipv6")
        const ws = yield* source("ipv6-tracker", [tracker.http])
        const seeder = yield* aria2Seeder({ torrent: ws.torrent, dir: ws.src, ipv6: true })

        const connected = yield* downloadOverIpv6(ws.meta, ws.dst)

        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")), "the file is correct")
        assert.include(connected, `[::1]:${seeder.port}`)
      }),
    90_000
  )

  it.live(
    "from an aria2c seeder found through the IPv6 DHT alone: it announces to our node, which gives it out",
    () =>
      Effect.gen(function*() {
        const ws = yield* source("ipv6-dht", [])
        // Our node on ::1 alone: the one aria2c's IPv6 node starts from.
        const router = yield* effectDht({ host: undefined, host6: "::1" })
        const [routerAddress] = yield* router.addresses
        assert.deepStrictEqual(routerAddress?.host, "::1")
        const seeder = yield* aria2Seeder({ torrent: ws.torrent, dir: ws.src, dht6EntryPoint: routerAddress! })
        const infoHash = Uint8Array.from(Buffer.from(ws.meta.infoHash, "hex"))
        // aria2c's get_peers over IPv6, then its announce_peer with our token: the seeder is in our store.
        yield* eventually(
          Effect.map(
            Stream.runCollect(router.lookup(infoHash)),
            (peers) => peers.some((peer) => peer.host === "::1" && peer.port === seeder.port)
          ),
          "aria2c's announce over the IPv6 DHT",
          30
        )
        assert.strictEqual(yield* router.nodes, 1, "aria2c's node answered our ping: in our IPv6 table")
        // A node that starts from aria2c's node alone finds the seeder: aria2c's answers (nodes6) lead it to ours.
        const seeker = yield* effectDht({
          host: undefined,
          host6: "::1",
          bootstrap: [{ host: "::1", port: seeder.dht6Port! }]
        })
        const found = yield* Stream.runCollect(seeker.lookup(infoHash))
        assert.deepInclude(found, { host: "::1", port: seeder.port })
        assert.strictEqual(yield* seeker.nodes, 2, "aria2c's node and ours")

        const connected = yield* downloadOverIpv6(ws.meta, ws.dst, { dht: true, dhtBootstrap: [routerAddress!] })

        assert.isTrue(sameBytes(join(ws.src, "data.bin"), join(ws.dst, "data.bin")), "the file is correct")
        assert.include(connected, `[::1]:${seeder.port}`)
      }),
    90_000
  )
})
