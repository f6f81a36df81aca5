/**
 * `npm run bench`: download throughput on loopback, effect-torrent beside aria2c.
 *
 * A 1 GiB torrent (1 MiB pieces) seeded by one aria2c, then by four at once,
 * all found through a local bittorrent-tracker (HTTP). In each swarm the same download is
 * done by effect-torrent (the built CLI) and by aria2c; each reports MiB/s
 * (wall clock, process start to verified data), CPU seconds and peak RSS
 * (from /usr/bin/time). The two clients take turns, BENCH_RUNS times each
 * (default 3, the first client alternating), and each row gives the median
 * rate and CPU (every rate in brackets) and the highest peak RSS: one run on
 * a shared 2-core machine varies by ±15%. Then the upload side: effect-torrent seeding to an
 * aria2c leecher (rate as the leecher saw it; CPU and RSS of our seeder,
 * including its start-up check of the data), beside the first row, which is
 * aria2c seeding to aria2c. Needs aria2c, mktorrent and time
 * (Debian packages; .ci/run installs them). BENCH_MIB sets the size.
 */
import { Server } from "bittorrent-tracker"
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { sha1File, writeData } from "./benchData.ts"
import {
  aria2Leeching,
  aria2Seeding,
  each,
  type Measure,
  median,
  sleep,
  spawnGroup,
  startTimed,
  timed,
  workDir,
  mib,
  ourNode,
  ourNodeVersion,
  runs
} from "./benchRun.ts"

const work = workDir("et-bench-")
const trackerPort = 20000 + Math.floor(Math.random() * 10000)

const aria2Leecher = (out: string) => timed("aria2c", [...aria2Leeching(out, 6998), torrentPath()], 600_000)

/** One row: the median rate and CPU of the runs (each rate in brackets when more than one), the highest RSS. */
const report = (label: string, client: string, measures: ReadonlyArray<Measure>, ok: boolean) => {
  const rates = measures.map((m) => mib / m.seconds)
  console.log(
    `${label.padEnd(12)} ${client.padEnd(22)} ${median(rates).toFixed(1).padStart(7)} MiB/s  ${
      median(measures.map((m) => m.cpu)).toFixed(2).padStart(6)
    } CPU s  ${Math.max(...measures.map((m) => m.rssMiB)).toFixed(0).padStart(5)} MiB peak RSS  ${
      ok ? "data verified" : "DATA MISMATCH"
    }${each(rates, 1)}`
  )
  if (!ok) process.exitCode = 1
}

const torrentPath = () => join(work, "data.torrent")

const main = async () => {
  console.log(`effect-torrent bench (${ourNodeVersion()}): ${mib} MiB, 1 MiB pieces, loopback (work dir ${work})`)
  const seedDir = join(work, "seed")
  const { path: data, sha1: expected } = writeData(seedDir, mib)
  const torrent = torrentPath()
  execFileSync("mktorrent", ["-l", "20", "-a", `http://127.0.0.1:${trackerPort}/announce`, "-o", torrent, data], {
    stdio: "ignore"
  })

  const tracker = new Server({ http: true, udp: false, ws: false, stats: false })
  tracker.on("warning", () => {})
  await new Promise<void>((resolve) => {
    tracker.once("listening", () => resolve())
    tracker.listen(trackerPort, { http: "127.0.0.1", udp: "127.0.0.1", udp6: "::1" })
  })

  const seeders: Array<ReturnType<typeof spawnGroup>> = []
  const startSeeder = (n: number) =>
    seeders.push(spawnGroup("aria2c", [...aria2Seeding(seedDir, 30000 + n), "--bt-tracker-interval=1", torrent]))

  const run = async (client: "effect-torrent" | "aria2c") => {
    const out = join(work, `out-${client}`)
    rmSync(out, { recursive: true, force: true })
    const measure = client === "effect-torrent"
      ? await timed(ourNode, [
        "bin/effect-torrent.js",
        torrent,
        "-o",
        out,
        "--port",
        "6999",
        "--quiet",
        "--no-dht",
        "--no-lpd"
      ], 600_000)
      : await aria2Leecher(out)
    const ok = sha1File(join(out, "data.bin")) === expected
    rmSync(out, { recursive: true, force: true })
    return { measure, ok }
  }

  /** Both clients in the same swarm, taking turns. */
  const compare = async (label: string) => {
    const results = { "effect-torrent": [] as Array<Measure>, aria2c: [] as Array<Measure> }
    const ok = { "effect-torrent": true, aria2c: true }
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? (["effect-torrent", "aria2c"] as const) : (["aria2c", "effect-torrent"] as const)
      for (const client of order) {
        const result = await run(client)
        results[client].push(result.measure)
        ok[client] &&= result.ok
      }
    }
    report(label, "effect-torrent ← aria2c", results["effect-torrent"], ok["effect-torrent"])
    report(label, "aria2c ← aria2c", results.aria2c, ok.aria2c)
  }

  console.log(
    `${"swarm".padEnd(12)} ${"download ← seeders".padEnd(22)} ${"rate".padStart(13)}  ${"CPU".padStart(12)}  ${
      "memory".padStart(19)
    }`
  )
  startSeeder(0)
  await sleep(2000) // the seeder announces itself
  await compare("1 seeder")
  for (let n = 1; n < 4; n++) startSeeder(n)
  await sleep(2000)
  await compare("4 seeders")

  // Upload: our seeder alone in the swarm, an aria2c leecher.
  for (const seeder of seeders) seeder.kill("SIGKILL")
  const announced = new Promise<void>((resolve) => tracker.once("start", () => resolve()))
  const ours = startTimed(ourNode, [
    "bin/effect-torrent.js",
    "seed",
    torrent,
    "-o",
    seedDir,
    "--port",
    "6997",
    "--quiet",
    "--no-dht",
    "--no-lpd"
  ], 600_000)
  await announced
  const out = join(work, "out-upload")
  const leecher = await aria2Leecher(out)
  const ok = sha1File(join(out, "data.bin")) === expected
  const seeder = await ours.stop()
  report("upload", "aria2c ← effect-torrent", [{ ...leecher, cpu: seeder.cpu, rssMiB: seeder.rssMiB }], ok)
  console.log(
    "(upload row: rate seen by the aria2c leecher; CPU and RSS of our seeder. Compare with the first row, aria2c ← aria2c.)"
  )
}

main().then(() => process.exit(), (error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
