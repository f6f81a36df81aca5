/**
 * BitTorrent v2 and hybrid torrents (BEP 52) with libtorrent (Debian's
 * python3-libtorrent, driven by test/util/libtorrent-peer.py on loopback with
 * no DHT, LSD, UPnP or NAT-PMP): v2-only and hybrid torrents made and seeded by
 * libtorrent downloaded by us, and ours (made and seeded by us) downloaded by
 * libtorrent, the data compared byte for byte.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, References, Result } from "effect"
import * as Fs from "node:fs"
import { join } from "node:path"
import * as CreateTorrent from "../../src/torrent/CreateTorrent.ts"
import * as InfoHash from "../../src/protocol/InfoHash.ts"
import * as Magnet from "../../src/protocol/Magnet.ts"
import * as Metainfo from "../../src/protocol/Metainfo.ts"
import { TorrentManager } from "../../src/TorrentManager.ts"
import { type FileSpec, sameBytes, tempDir, writeTree } from "../util/Files.ts"
import { within } from "../util/Leecher.ts"
import { helper, jsonLine, python } from "../util/Libtorrent.ts"
import { exitOf, freePort, opentracker, spawnChild, trackerUrls, waitForLine, waitForSeeders } from "../util/Swarm.ts"

const pieceLength = 32 * 1024

/** Our torrent of `source` in 32 KiB pieces, made with the library's CreateTorrent. */
const create = (source: string, options: Omit<CreateTorrent.Options, "pieceLength">) =>
  CreateTorrent.create(source, { pieceLength, ...options }).pipe(Effect.provide(NodeServices.layer))

/** Sizes on and off piece and block boundaries, a file of one piece, a file of one block's part, an empty file. */
const files: ReadonlyArray<FileSpec> = [
  { path: "big.bin", size: 1_000_003 },
  { path: "docs/exact.bin", size: 4 * pieceLength },
  { path: "docs/small.txt", size: 1000 },
  { path: "docs/zero.dat", size: 0 },
  { path: "one-piece.bin", size: pieceLength - 5 },
  { path: "z/last.bin", size: 300_001 }
]

const name = "payload"

/** The files under `root/payload` missing or different from the source's. */
const mismatches = (source: string, root: string) =>
  files.map((file) => file.path).filter((path) => {
    const target = join(root, name, ...path.split("/"))
    return !Fs.existsSync(target) || !sameBytes(join(source, ...path.split("/")), target)
  })

const decode = (file: string) => {
  const decoded = Metainfo.decode(Fs.readFileSync(file))
  if (Result.isFailure(decoded)) throw decoded.failure
  return decoded.success
}

/** The data under `root/seed/payload`. */
const workspace = (label: string) =>
  Effect.gen(function*() {
    const root = yield* tempDir(label)
    const seedDir = join(root, "seed")
    const source = join(seedDir, name)
    yield* writeTree(source, files)
    return { root, seedDir, source }
  })

/** A torrent of `source` made by libtorrent. */
const libtorrentCreate = (source: string, out: string, kind: "v2" | "hybrid") =>
  Effect.gen(function*() {
    const child = yield* spawnChild("libtorrent create", python, [
      helper,
      "create",
      source,
      out,
      kind,
      `${pieceLength}`
    ])
    assert.strictEqual(yield* exitOf(child, 30_000), 0, child.output())
    return decode(out)
  })

/** libtorrent seeding `torrent` from `dir`, in the test's scope: its port once it has checked the data. */
const libtorrentSeeder = (torrent: string, dir: string) =>
  Effect.gen(function*() {
    const seeder = yield* spawnChild("libtorrent seeder", python, [helper, "seed", torrent, dir])
    return (yield* waitForLine(seeder, jsonLine<{ port: number }>, 30_000)).port
  })

/** Our manager, on loopback. */
const manager = (downloadDir: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const context = yield* Layer.build(
      TorrentManager.layerNode({ downloadDir, port, listenHost: "127.0.0.1", dht: false, localDiscovery: false }).pipe(
        Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Warn"))
      )
    )
    return { manager: context.mapUnsafe.get(TorrentManager.key) as TorrentManager["Service"], port }
  })

const download = (kind: "v2" | "hybrid") =>
  Effect.gen(function*() {
    const { root, seedDir, source } = yield* workspace(`v2-from-libtorrent-${kind}`)
    const torrent = join(root, `${kind}.torrent`)
    const meta = yield* libtorrentCreate(source, torrent, kind)
    assert.isDefined(meta.infoHashV2)
    assert.strictEqual(meta.pieces.length > 0, kind === "hybrid")
    const port = yield* libtorrentSeeder(torrent, seedDir)
    const out = join(root, "ours")
    const { manager: ours } = yield* manager(out)
    const handle = yield* ours.add(meta, { peers: [{ host: "127.0.0.1", port }] })
    yield* handle.completed.pipe(within(60_000, `the ${kind} download from libtorrent`))
    assert.deepStrictEqual(mismatches(source, out), [], "files missing or different")
  })

/**
 * `kind`'s torrent made and seeded by us, fetched by libtorrent from its
 * .torrent, its magnet link, or a magnet link of its v2 info-hash alone.
 */
const seed = (kind: "v2" | "hybrid", by: "torrent" | "magnet" | "v2 magnet" = "torrent") =>
  Effect.gen(function*() {
    const { root, seedDir, source } = yield* workspace(`v2-to-libtorrent-${kind}`)
    const { bytes, meta } = yield* create(source, { version: kind })
    const torrent = join(root, `${kind}.torrent`)
    Fs.writeFileSync(torrent, bytes)
    const { manager: ours, port } = yield* manager(seedDir)
    const seeder = yield* ours.add(meta, { seed: true })
    yield* seeder.completed.pipe(within(30_000, "our seeder's check of its data"))
    const out = join(root, "libtorrent")
    const magnet = by !== "torrent"
    const given = by === "torrent"
      ? torrent
      : by === "magnet"
      ? Magnet.format(Magnet.fromMetainfo(meta))
      : v2Magnet(meta, [])
    if (by === "v2 magnet") assert.notInclude(given, "urn:btih:")
    const leecher = yield* spawnChild("libtorrent leecher", python, [
      helper,
      "download",
      given,
      out,
      `127.0.0.1:${port}`
    ])
    const done = yield* waitForLine(
      leecher,
      jsonLine<{ done: boolean; hashes: number; rejects: number; v2: boolean }>,
      70_000
    )
    assert.isTrue(done.done, leecher.output())
    // Our handshake says we speak v2 (libtorrent's bit).
    assert.isTrue(done.v2, leecher.output())
    // From a magnet link it asks for the piece layers: we answer every request.
    if (magnet) assert.deepStrictEqual([done.hashes > 0, done.rejects], [true, 0], leecher.output())
    assert.deepStrictEqual(mismatches(source, out), [], "files missing or different")
  })

/** A magnet link naming the torrent by its v2 info-hash alone (`urn:btmh:`), as a v2-only client knows it. */
const v2Magnet = (meta: Metainfo.Metainfo, peers: ReadonlyArray<string>) =>
  Magnet.format({ ...Magnet.fromMetainfo(meta), infoHash: InfoHash.truncate(meta.infoHashV2!), peers })

describe("BitTorrent v2 with libtorrent", () => {
  it.live(
    "we download a v2-only magnet link from libtorrent: metadata by ut_metadata, piece layers by hash requests",
    () =>
      Effect.gen(function*() {
        const { root, seedDir, source } = yield* workspace("v2-magnet-from-libtorrent")
        const torrent = join(root, "v2.torrent")
        const meta = yield* libtorrentCreate(source, torrent, "v2")
        const port = yield* libtorrentSeeder(torrent, seedDir)
        const magnet = Magnet.format({ ...Magnet.fromMetainfo(meta), peers: [`127.0.0.1:${port}`] })
        assert.match(magnet, /^magnet:\?xt=urn:btmh:1220[0-9a-f]{64}&/)
        const out = join(root, "ours")
        const { manager: ours } = yield* manager(out)
        const handle = yield* ours.add(magnet)
        yield* handle.completed.pipe(within(60_000, "the v2 magnet download from libtorrent"))
        assert.deepStrictEqual(mismatches(source, out), [], "files missing or different")
      }),
    90_000
  )

  it.live("libtorrent downloads a v2-only torrent made and seeded by us", () => seed("v2"), 90_000)
  it.live("libtorrent downloads a hybrid torrent made and seeded by us", () => seed("hybrid"), 90_000)
  it.live(
    "libtorrent downloads a v2-only magnet link from us: we serve the metadata and answer its hash requests",
    () => seed("v2", "magnet"),
    90_000
  )
  it.live(
    "our v2 torrent of the same files is libtorrent's, byte for byte: the same trees and info-hash",
    () =>
      Effect.gen(function*() {
        const { root, source } = yield* workspace("v2-same-as-libtorrent")
        const theirs = yield* libtorrentCreate(source, join(root, "theirs.torrent"), "v2")
        const ours = yield* create(source, { version: "v2" })
        const roots = (meta: Metainfo.Metainfo) =>
          meta.files.map((file) => [file.path.join("/"), Buffer.from(file.piecesRoot ?? []).toString("hex")])
        assert.deepStrictEqual(roots(ours.meta), roots(theirs))
        assert.strictEqual(ours.meta.infoHashV2, theirs.infoHashV2)
        assert.deepStrictEqual(
          ours.meta.files.map((file) => file.pieceLayer),
          theirs.files.map((file) => file.pieceLayer)
        )
      }),
    60_000
  )

  it.live(
    "libtorrent joins our hybrid torrent by its v2 info-hash alone: we answer its handshake under that hash",
    () => seed("hybrid", "v2 magnet"),
    90_000
  )
  it.live(
    "we dial a libtorrent that knows our hybrid by its v2 info-hash alone: hung up on, we dial again naming that one",
    () =>
      Effect.gen(function*() {
        const { root, seedDir, source } = yield* workspace("hybrid-dialled-by-v2")
        const { meta } = yield* create(source, { version: "hybrid" })
        const out = join(root, "libtorrent")
        const leecher = yield* spawnChild("libtorrent leecher", python, [
          helper,
          "download",
          v2Magnet(meta, []),
          out,
          "-"
        ])
        const { port } = yield* waitForLine(leecher, jsonLine<{ port: number }>, 30_000)
        const { manager: ours } = yield* manager(seedDir)
        yield* ours.add(meta, { seed: true, peers: [{ host: "127.0.0.1", port }] })
        const done = yield* waitForLine(leecher, (line) => jsonLine<{ done?: boolean }>(line)?.done, 70_000)
        assert.isTrue(done, leecher.output())
        assert.deepStrictEqual(mismatches(source, out), [], "files missing or different")
      }),
    90_000
  )
  it.live(
    "our hybrid seed is announced under both its hashes (BEP 52): opentracker counts it in each swarm",
    () =>
      Effect.gen(function*() {
        const { seedDir, source } = yield* workspace("hybrid-announced-twice")
        const trackerPort = yield* freePort
        const { http } = trackerUrls(trackerPort)
        const { meta } = yield* create(source, { version: "hybrid", trackers: [http] })
        const v2 = { ...meta, infoHash: InfoHash.truncate(meta.infoHashV2!) }
        yield* opentracker({ port: trackerPort, dir: yield* tempDir("opentracker"), torrents: [meta, v2] })
        const { manager: ours } = yield* manager(seedDir)
        const seeder = yield* ours.add(meta, { seed: true })
        yield* seeder.completed.pipe(within(30_000, "our seeder's check of its data"))
        yield* waitForSeeders(http, meta, 1)
        yield* waitForSeeders(http, v2, 1)
      }),
    60_000
  )
  it.live(
    "we join libtorrent's hybrid torrent by its v2 info-hash alone (a urn:btmh: magnet link)",
    () =>
      Effect.gen(function*() {
        const { root, seedDir, source } = yield* workspace("hybrid-v2-magnet-from-libtorrent")
        const torrent = join(root, "hybrid.torrent")
        const meta = yield* libtorrentCreate(source, torrent, "hybrid")
        const port = yield* libtorrentSeeder(torrent, seedDir)
        const magnet = v2Magnet(meta, [`127.0.0.1:${port}`])
        assert.notInclude(magnet, "urn:btih:")
        const out = join(root, "ours")
        const { manager: ours } = yield* manager(out)
        const handle = yield* ours.add(magnet)
        yield* handle.completed.pipe(within(60_000, "the hybrid download by its v2 magnet from libtorrent"))
        assert.strictEqual((yield* handle.metadata).infoHash, meta.infoHash)
        assert.deepStrictEqual(mismatches(source, out), [], "files missing or different")
      }),
    90_000
  )

  it.live(
    "piece layers learned from peers are kept: served to the next peer, across a pause, and in the saved metadata",
    () =>
      Effect.gen(function*() {
        const { root, seedDir, source } = yield* workspace("v2-layers-relayed")
        const { meta } = yield* create(source, { version: "v2" })
        assert.isNotEmpty(
          Metainfo.missingPieceLayers({ ...meta, files: meta.files.map(({ pieceLayer: _, ...f }) => f) })
        )
        const a = yield* manager(seedDir)
        const seeding = yield* a.manager.add(meta, { seed: true })
        yield* seeding.completed.pipe(within(30_000, "A's check of its data"))
        // B learns the layers from A by hash requests; C and D, from B alone, need them from B.
        const b = yield* manager(join(root, "b"))
        const relay = yield* b.manager.add(v2Magnet(meta, [`127.0.0.1:${a.port}`]), { seed: true })
        yield* relay.completed.pipe(within(60_000, "B's download from A"))
        const saved = Metainfo.decode(Metainfo.encode(yield* relay.wholeMetadata))
        assert.isTrue(
          Result.isSuccess(saved) && Metainfo.missingPieceLayers(saved.success).length === 0,
          "the saved metadata lacks piece layers"
        )
        // A leaves: from now on B alone answers hash requests, before and after a pause.
        yield* a.manager.remove(seeding.infoHash)
        const fromB = (label: string) =>
          Effect.gen(function*() {
            const out = join(root, label)
            const { manager: leecher } = yield* manager(out)
            const handle = yield* leecher.add(v2Magnet(meta, [`127.0.0.1:${b.port}`]))
            yield* handle.completed.pipe(within(60_000, `${label}'s download from B`))
            assert.deepStrictEqual(mismatches(source, out), [], `${label}: files missing or different`)
          })
        yield* fromB("c")
        yield* b.manager.pause(relay.infoHash)
        yield* b.manager.resume(relay.infoHash)
        yield* relay.completed.pipe(within(30_000, "B's check of its data after the pause"))
        yield* fromB("d")
      }),
    120_000
  )

  it.live("we download a v2-only torrent made and seeded by libtorrent", () => download("v2"), 90_000)
  it.live("we download a hybrid torrent made and seeded by libtorrent", () => download("hybrid"), 90_000)
})
