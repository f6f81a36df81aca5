/**
 * `npm run bench:encryption` (and the end of `npm run bench`): what message
 * stream encryption costs.
 *
 * 1. RC4 on one core: MiB/s over a 16 MiB buffer and over 16 KiB chunks
 *    (a block's size), in place, after a warm-up.
 * 2. Handshakes: MSE handshakes between two of our ends over the in-memory
 *    network, per second (both sides' DH and hashing on this one core).
 * 3. A download of BENCH_MIB MiB (default 1024, 1 MiB pieces) on loopback
 *    from one aria2c seeder into our library in this process (a
 *    TorrentManager with `Encryption.layer` over the Node network): once
 *    encrypted (aria2c with --bt-require-crypto=true and
 *    --bt-min-crypto-level=arc4, our policy `require`), once plain (another
 *    aria2c without them, our policy `disable`), once from that aria2c under
 *    `prefer`, the default (the MSE handshake, then plaintext: aria2c's
 *    minimum crypto level is plain), BENCH_RUNS times each
 *    (default 3, taking turns). Each row: the median rate (every rate in
 *    brackets) and the median CPU seconds of this process (all its threads),
 *    the data verified by SHA-1. Needs aria2c and mktorrent.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer, Queue, References } from "effect"
import * as Socket from "effect/socket/Socket"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import * as Encryption from "../src/peer/Encryption.ts"
import * as MemoryNetwork from "../src/peer/MemoryNetwork.ts"
import { type Connection, Network } from "../src/peer/Network.ts"
import * as InfoHash from "../src/protocol/InfoHash.ts"
import * as Metainfo from "../src/protocol/Metainfo.ts"
import { Rc4 } from "../src/protocol/Rc4.ts"
import { PieceWorker } from "../src/torrent/PieceWorker.ts"
import { Storage } from "../src/torrent/Storage.ts"
import { TorrentConfig } from "../src/torrent/TorrentConfig.ts"
import { TorrentManager } from "../src/TorrentManager.ts"
import * as HttpTracker from "../src/tracker/HttpTracker.ts"
import * as Tracker from "../src/tracker/Tracker.ts"
import * as UdpTracker from "../src/tracker/UdpTracker.ts"
import { sha1File, writeData } from "./benchData.ts"
import {
  accepts,
  aria2Seeding,
  entry,
  freePort,
  type Download,
  printDownloads,
  sleep,
  spawnGroup,
  timedDownload,
  within,
  workDir,
  mib,
  runs
} from "./benchRun.ts"

// ---------------------------------------------------------------------------
// 1. RC4
// ---------------------------------------------------------------------------

/** MiB/s of `rc4.process` over `chunk`-byte views of a 16 MiB buffer, for about `millis`. */
const rc4Rate = (chunk: number, millis: number) => {
  const buffer = new Uint8Array(randomBytes(16 * 1024 * 1024))
  const rc4 = new Rc4(randomBytes(20))
  rc4.process(buffer) // warm-up
  let bytes = 0
  const start = performance.now()
  while (performance.now() - start < millis) {
    for (let offset = 0; offset < buffer.length; offset += chunk) rc4.process(buffer.subarray(offset, offset + chunk))
    bytes += buffer.length
  }
  return bytes / 1024 / 1024 / ((performance.now() - start) / 1000)
}

// ---------------------------------------------------------------------------
// 2. Handshakes
// ---------------------------------------------------------------------------

const handshakesPerSecond = (count: number) =>
  Effect.gen(function*() {
    const infoHash = new Uint8Array(randomBytes(20))
    const network = yield* MemoryNetwork.make()
    const on = (host: string) => Effect.service(Network).pipe(Effect.provide(network.layer(host)))
    const server = Encryption.make(yield* on("10.0.0.1"), { policy: "require" })
    yield* server.encryption.serve(infoHash)
    const accepted = yield* Queue.unbounded<Connection>()
    yield* server.network.listen({ port: 6881 }, (c) => Queue.offerUnsafe(accepted, c))
    const client = Encryption.make(yield* on("10.0.0.2"), { policy: "require" }).network
    const one = Effect.gen(function*() {
      const socket = yield* client.connect({ host: "10.0.0.1", port: 6881 }, 1000, { infoHash })
      yield* Effect.all([
        Socket.readerBytes(socket),
        Effect.flatMap(Queue.take(accepted), (c) => Socket.readerBytes(c.socket))
      ], { concurrency: 2 })
    }).pipe(Effect.scoped)
    yield* one // the DH group is made once per process (~20 ms): not counted
    const start = performance.now()
    for (let i = 0; i < count; i++) yield* one
    return count / ((performance.now() - start) / 1000)
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------
// 3. Downloads
// ---------------------------------------------------------------------------

/** An aria2c seeder of the torrent (data not re-checked), once it listens: its port and pid. */
const aria2Seeder = async (torrent: string, dir: string, extra: ReadonlyArray<string>) => {
  const port = await freePort()
  const child = spawnGroup("aria2c", [...aria2Seeding(dir, port), ...extra, torrent])
  const listening = async () => {
    while (!(await accepts(port))) await sleep(100)
  }
  await within(listening(), 15_000, `the aria2c seeder on port ${port}`)
  return { port, pid: child.pid! }
}

/**
 * Our library on the Node network under `Encryption.layer(policy)` (the
 * manager's own `encryption` setting `disable`, so that the layer is the one
 * encrypting, never twice, whether or not the manager applies the setting).
 */
const manager = (downloadDir: string, port: number, policy: Encryption.Policy) =>
  TorrentManager.layer.pipe(
    Layer.provideMerge(Encryption.Encryption.layer({ policy }).pipe(Layer.provide(Network.layerNode))),
    Layer.provide(Layer.mergeAll(
      TorrentConfig.layerWith({ downloadDir, port, listenHost: "127.0.0.1", encryption: "disable" }),
      Layer.mergeAll(PieceWorker.layerDigest, Storage.layerNode).pipe(Layer.provide(PieceWorker.layer)),
      Tracker.Tracker.layer.pipe(Layer.provide(Layer.mergeAll(HttpTracker.layerNode, UdpTracker.layerNode)))
    )),
    Layer.provide(NodeServices.layer),
    Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
  )

const download = (
  meta: Metainfo.Metainfo,
  out: string,
  seeder: { readonly port: number; readonly pid: number },
  policy: Encryption.Policy
) => timedDownload(meta, seeder).pipe(Effect.provide(manager(out, 0, policy)))

/**
 * Seeder mode (`bench-encryption.ts --seed <torrent> <dir> <policy>`): our
 * library seeding the torrent from `dir` under `policy`; prints its port once
 * the data is checked, then seeds until killed.
 */
const seed = (torrentFile: string, dir: string, policy: Encryption.Policy) =>
  Effect.gen(function*() {
    const meta = yield* Effect.fromResult(Metainfo.decode(readFileSync(torrentFile)))
    const port = yield* Effect.promise(freePort)
    return yield* Effect.gen(function*() {
      const torrents = yield* TorrentManager
      const encryption = yield* Encryption.Encryption
      yield* encryption.serve(InfoHash.toBytes(meta.infoHash))
      const handle = yield* torrents.add(meta, { seed: true })
      yield* handle.completed
      process.stdout.write(`ready ${port}\n`)
      return yield* Effect.never
    }).pipe(Effect.scoped, Effect.provide(manager(dir, port, policy)))
  })

/** Our seeder in another process, once it has checked the data: its port and pid. */
const ourSeeder = (torrent: string, dir: string, policy: Encryption.Policy) =>
  new Promise<{ readonly port: number; readonly pid: number }>((resolve, reject) => {
    const child = spawnGroup(
      process.execPath,
      ["--import", "tsx", "scripts/bench-encryption.ts", "--seed", torrent, dir, policy],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    const timer = setTimeout(() => reject(new Error("our seeder was not ready within 5 minutes")), 300_000)
    let out = ""
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      out += text
      const ready = /ready (\d+)/.exec(out)
      if (ready !== null) {
        clearTimeout(timer)
        resolve({ port: Number(ready[1]), pid: child.pid! })
      }
    })
    child.once("exit", (code) => reject(new Error(`our seeder exited (${code})`)))
  })

const main = async () => {
  const work = workDir("et-bench-mse-")
  console.log("effect-torrent encryption bench (loopback)")
  console.log(`RC4, one core:          ${rc4Rate(16 * 1024 * 1024, 2000).toFixed(0).padStart(5)} MiB/s (16 MiB buffer)`)
  console.log(`                        ${rc4Rate(16 * 1024, 2000).toFixed(0).padStart(5)} MiB/s (16 KiB chunks)`)
  const rate = await Effect.runPromise(handshakesPerSecond(200))
  console.log(`MSE handshakes:         ${rate.toFixed(0).padStart(5)} /s (both ends, in memory, one core)`)

  const seedDir = join(work, "seed")
  const { path: data, sha1: expected } = writeData(seedDir, mib)
  const torrent = join(work, "data.torrent")
  execFileSync("mktorrent", ["-l", "20", "-o", torrent, data], { stdio: "ignore" })
  const meta = Metainfo.decode(readFileSync(torrent))
  if (meta._tag === "Failure") throw new Error("mktorrent made a torrent we cannot read")

  const rows = [
    {
      label: "RC4 ← aria2c",
      policy: "require",
      seeder: await aria2Seeder(torrent, seedDir, ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"])
    },
    { label: "plain ← aria2c", policy: "disable", seeder: await aria2Seeder(torrent, seedDir, []) },
    // The default: the MSE handshake, then plaintext (aria2c's minimum crypto level is plain by default).
    { label: "prefer ← aria2c", policy: "prefer", seeder: await aria2Seeder(torrent, seedDir, []) },
    { label: "RC4 ← effect-torrent", policy: "require", seeder: await ourSeeder(torrent, seedDir, "require") },
    { label: "plain ← effect-torrent", policy: "disable", seeder: await ourSeeder(torrent, seedDir, "disable") }
  ] as const
  const measures = rows.map(() => [] as Array<Download>)
  let ok = true
  for (let i = 0; i < runs; i++) {
    for (const r of i % 2 === 0 ? [0, 1, 2, 3, 4] : [4, 3, 2, 1, 0]) {
      const out = join(work, "out")
      rmSync(out, { recursive: true, force: true })
      measures[r]!.push(await Effect.runPromise(download(meta.success, out, rows[r]!.seeder, rows[r]!.policy)))
      ok &&= sha1File(join(out, "data.bin")) === expected
      rmSync(out, { recursive: true, force: true })
    }
  }
  printDownloads(
    `${mib} MiB download (ours ← seeder)  rate, our CPU s (the seeder's), every rate`,
    rows.map((row, r) => ({ label: row.label, measures: measures[r]! })),
    { unit: "CPU s", of: (seconds) => seconds.toFixed(2) },
    ok
  )
}

entry(main, (args) => Effect.runPromise(seed(args[0]!, args[1]!, args[2] as Encryption.Policy)))
