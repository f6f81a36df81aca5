/**
 * Peak memory of a seeder with 500 connected peers (`npm run bench:peers`,
 * issue 16: ≤ 150 MiB). The seeder is what a user runs: the built CLI
 * (`effect-torrent seed`, run `npm run build` first) in plain node, seeding
 * a 16 MiB torrent (no trackers, no DHT, no LPD) on a free port. A child
 * process (this script with `peers`) opens 500 TCP connections to it, each
 * doing a handshake, HaveNone and Interested, and reading what it is sent.
 *
 * Each connection comes from its own loopback address (127.0.1.1 …
 * 127.0.2.250: Linux accepts any 127/8 source), as 500 peers of a real
 * swarm are 500 hosts; the seeder's limit of incoming connections per host
 * (8) then never applies, and the CLI has no setting for it anyway.
 *
 * Figures, from /proc/<seeder>/status: the baseline is VmRSS once the seeder
 * reports (`--json`) that it is seeding, before any peer; the peak is VmHWM
 * (the highest RSS of the process's whole life) after the peers were held
 * 10 s, read while they are still connected. Connected at once: the most
 * peers the seeder's `--json` lines reported, and how many of the child's
 * sockets were still open with the seeder's handshake received at the end
 * of the hold.
 *
 * With fewer than 500 connected (the engine's connection limits turned one
 * away) the verdict says "not measured", not met or MISSED.
 *
 * BENCH_SEEDER_NODE_OPTIONS is given to the seeder alone as NODE_OPTIONS
 * (e.g. --max-semi-space-size=1), to try V8 flags on it.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import * as Handshake from "../src/protocol/Handshake.ts"
import * as Metainfo from "../src/protocol/Metainfo.ts"
import * as WireMessage from "../src/protocol/WireMessage.ts"
import { writeData } from "./benchData.ts"
import { freePort, ourNode, ourNodeVersion, printed, sleep, spawnGroup, stop, verdict, workDir } from "./benchRun.ts"

const peerCount = 500
const holdMillis = 10_000
const targetMiB = 150
const cli = "bin/effect-torrent.js"

/** The n-th peer's source address: 250 per /24 from 127.0.1.1 on, one address per peer. */
const sourceAddress = (n: number) => `127.0.${1 + Math.floor(n / 250)}.${1 + (n % 250)}`

/**
 * The child: `peers <port> <info-hash hex>`. Prints "connected" once every
 * socket is connected and, `holdMillis` later, how many are still open
 * having received the seeder's handshake (68 bytes); it holds them until it
 * is killed.
 */
const runPeers = (port: number, infoHash: Uint8Array) => {
  let connected = 0
  const sockets = Array.from({ length: peerCount }, (_, i) => {
    const socket = Net.connect({ host: "127.0.0.1", port, localAddress: sourceAddress(i) })
    const peer = { received: 0, open: true }
    const peerId = Buffer.from(`-BP0001-${String(i).padStart(12, "0")}`)
    socket.on("error", () => {})
    socket.on("close", () => (peer.open = false))
    socket.on("data", (data) => (peer.received += data.length))
    socket.on("connect", () => {
      socket.write(Buffer.concat([
        Handshake.encode(Handshake.make({ infoHash, peerId, features: ["fast"] })),
        WireMessage.encodeBatch([{ _tag: "HaveNone" }, { _tag: "Interested" }])
      ]))
      if (++connected === peerCount) {
        console.log("connected")
        setTimeout(
          () => console.log(`handshaken ${sockets.filter((p) => p.open && p.received >= 68).length}`),
          holdMillis
        )
      }
    })
    return peer
  })
  setTimeout(() => process.exit(1), holdMillis + 60_000).unref() // never outlive a stuck parent for long
}

/** A field of /proc/<pid>/status in MiB (it is given in kB). */
const statusMiB = (pid: number, field: "VmRSS" | "VmHWM") => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "latin1"))
  return Number(match![1]) / 1024
}

const main = async () => {
  const work = workDir("et-bench-peers-")
  const { path: data } = writeData(work, 16)
  const torrent = join(work, "data.torrent")
  execFileSync(ourNode, [cli, "create", data, "-o", torrent, "--piece-length", "256K"], { stdio: "ignore" })
  const decoded = Metainfo.decode(readFileSync(torrent))
  if (decoded._tag === "Failure") throw new Error(`${torrent}: ${decoded.failure.message}`)
  const port = await freePort()

  const nodeOptions = process.env.BENCH_SEEDER_NODE_OPTIONS
  const seeder = spawnGroup(ourNode, [
    cli,
    "seed",
    torrent,
    "-o",
    work,
    "--port",
    String(port),
    "--max-peers",
    String(peerCount + 10),
    "--json",
    "--no-dht",
    "--no-lpd"
  ], { stdio: ["ignore", "pipe", "pipe"], env: { NODE_OPTIONS: nodeOptions ?? "" } })
  let seederPeers = 0
  createInterface({ input: seeder.stdout! }).on("line", (line) => {
    const peers = /"peers":(\d+)/.exec(line)
    if (peers !== null) seederPeers = Math.max(seederPeers, Number(peers[1]))
  })
  // Seeding: the data is checked, the port listened on; nothing else runs until the peers come.
  await printed(seeder, /"state":"(seeding)"/, 60_000, "the seeder's check of the data")
  const pid = seeder.pid!
  const baseline = statusMiB(pid, "VmRSS")

  const child = spawnGroup(process.execPath, [
    "--import",
    "tsx",
    fileURLToPath(import.meta.url),
    "peers",
    String(port),
    decoded.success.infoHash
  ], { stdio: ["ignore", "pipe", "inherit"] })
  await printed(child, /^(connected)$/, 60_000, `${peerCount} connections`)
  const handshaken = Number(await printed(child, /^handshaken (\d+)$/, holdMillis + 30_000, "the peers' count"))
  await sleep(1100) // the seeder's next --json line, once a second, counted the peers
  // Before the child goes: 500 peers leaving at once is not what is measured.
  const peak = statusMiB(pid, "VmHWM")
  await stop(child)
  await stop(seeder)

  const connected = Math.min(seederPeers, handshaken)
  console.log(JSON.stringify({
    node: ourNodeVersion(),
    peers: peerCount,
    connectedAtOnce: seederPeers,
    handshaken,
    baselineRssMiB: Number(baseline.toFixed(1)),
    peakRssMiB: Number(peak.toFixed(1)),
    perPeerKiB: Number((((peak - baseline) * 1024) / Math.max(1, connected)).toFixed(1)),
    ...(nodeOptions === undefined ? {} : { seederNodeOptions: nodeOptions }),
    verdict: `${peerCount} connected peers ≤ ${targetMiB} MiB: ${
      connected < peerCount ? `not measured (${connected} connected)` : verdict(peak <= targetMiB)
    }`
  }))
}

if (process.argv[2] === "peers") runPeers(Number(process.argv[3]), Buffer.from(process.argv[4]!, "hex"))
else {
  main().then(() => process.exit(), (error) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
}
