/**
 * Peak memory with 500 connected peers (`npm run bench:peers`): this process
 * seeds a 16 MiB torrent with a TorrentManager on 127.0.0.1; a child process
 * (this script with `peers`) opens 500 TCP connections to it, each doing a
 * handshake, HaveNone and Interested, and reading what it is sent. Prints
 * the peak RSS of the seeding process while all of them are connected.
 */
import { Effect, Layer, References } from "effect"
import { spawn } from "node:child_process"
import * as Net from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Handshake from "../src/protocol/Handshake.ts"
import * as WireMessage from "../src/protocol/WireMessage.ts"
import { TorrentManager } from "../src/TorrentManager.ts"
import { createWithCreateTorrent, tempDir, writeTree } from "../test/util/Files.ts"

const peerCount = 500
const holdMillis = 15_000

/** The child: `peers <port> <info-hash hex>`. */
const runPeers = (port: number, infoHash: Uint8Array) => {
  let connected = 0
  for (let i = 0; i < peerCount; i++) {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const peerId = Buffer.from(`-BP0001-${String(i).padStart(12, "0")}`)
    socket.on("error", () => {})
    socket.on("data", () => {})
    socket.on("connect", () => {
      connected++
      socket.write(Buffer.concat([
        Handshake.encode(Handshake.make({ infoHash, peerId, features: ["fast"] })),
        WireMessage.encodeBatch([{ _tag: "HaveNone" }, { _tag: "Interested" }])
      ]))
      if (connected === peerCount) console.log("connected")
    })
  }
  setTimeout(() => process.exit(0), holdMillis + 10_000).unref()
}

const main = Effect.gen(function*() {
  const dir = yield* tempDir("bench-peers")
  yield* writeTree(dir, [{ path: "data.bin", size: 16 * 1024 * 1024 }])
  const { meta } = yield* createWithCreateTorrent(join(dir, "data.bin"), join(dir, "data.torrent"), {
    pieceLength: 256 * 1024,
    announce: []
  })
  const layer = TorrentManager.layerNode({
    downloadDir: dir,
    port: 0,
    listenHost: "127.0.0.1",
    maxPeers: peerCount + 10,
    maxConnections: peerCount + 10,
    maxConnectionsPerHost: peerCount + 10
  }).pipe(Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "Error")))
  yield* Effect.gen(function*() {
    const manager = yield* TorrentManager
    const handle = yield* manager.add(meta, { seed: true })
    yield* handle.completed // the data is in place: checked, then seeding
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50)
    const child = spawn(process.execPath, [
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      "peers",
      String(manager.port),
      meta.infoHash
    ], { stdio: ["ignore", "inherit", "inherit"] })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    let most = 0
    const started = Date.now()
    while (Date.now() - started < holdMillis) {
      yield* Effect.sleep(500)
      most = Math.max(most, (yield* handle.progress.get).peers)
    }
    clearInterval(sampler)
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
    console.log(JSON.stringify({
      peers: peerCount,
      connectedAtOnce: most,
      baselineRssMiB: Number(mib(baseline)),
      peakRssMiB: Number(mib(peak)),
      perPeerKiB: Number(((peak - baseline) / 1024 / Math.max(1, most)).toFixed(1))
    }))
  }).pipe(Effect.provide(layer))
}).pipe(Effect.scoped)

if (process.argv[2] === "peers") runPeers(Number(process.argv[3]), Buffer.from(process.argv[4]!, "hex"))
else {
  Effect.runPromise(main).then(() => process.exit(0), (error) => {
    console.error(error)
    process.exit(1)
  })
}
